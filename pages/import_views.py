"""Moderators' pages: upload a file to import, follow the job, read its report."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from imports.jobs import JobConflict, StorageUnavailable
from pages.import_forms import ImportUploadForm
from tracker.history import is_moderator
from tracker.models import ImportJob, JobStatus

# Seconds after which a moderator may try an upload again that the full media folder refused.
STORAGE_RETRY_AFTER = 600

ISSUES_SHOWN = 100


def _moderator_required(request) -> None:
    if not is_moderator(request.user):
        raise PermissionDenied(_("Only moderators import events."))


@login_required
@require_http_methods(["GET", "POST"])
def import_list(request):
    _moderator_required(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    status = 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        from imports.services import import_job_create

        try:
            job = import_job_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        except StorageUnavailable:
            form.add_error(
                None,
                _(
                    "The file could not be stored: the server's storage is full or not "
                    "writable. Nothing was saved. Try again later, or tell the administrator."
                ),
            )
            status = 503
        else:
            return redirect("imports:detail", pk=job.pk)
    jobs = ImportJob.objects.select_related(None).order_by("-created_at")[:50]
    response = render(request, "imports/list.html", {"form": form, "jobs": jobs}, status=status)
    if status == 503:
        response["Retry-After"] = str(STORAGE_RETRY_AFTER)
    return response


@login_required
@require_safe
def import_detail(request, pk: int):
    _moderator_required(request)
    job = get_object_or_404(ImportJob, pk=pk)
    return render(request, "imports/detail.html", _detail_context(job))


def _detail_context(job: ImportJob) -> dict:
    from imports.services import import_job_progress

    done, total = import_job_progress(job=job)
    return {
        "job": job,
        "done": done,
        "total": total,
        "issues": job.issues.order_by("row", "id")[:ISSUES_SHOWN],
        "shown": ISSUES_SHOWN,
        "can_cancel": not job.is_finished and not job.cancel_requested,
        "can_retry": job.status in (JobStatus.FAILED, JobStatus.CANCELLED),
    }


@login_required
@require_POST
def import_cancel(request, pk: int):
    _moderator_required(request)
    from imports.services import import_job_cancel

    job = get_object_or_404(ImportJob, pk=pk)
    try:
        job = import_job_cancel(job_id=job.pk, user=request.user)
    except JobConflict:
        job.refresh_from_db()
        if job.is_finished:
            message = _("This import has already finished (%(status)s); nothing to cancel.")
        else:
            message = _("A cancel was already requested; the import stops at its next batch.")
        return _conflict(request, job, message % {"status": job.get_status_display()})
    if job.status == JobStatus.CANCELLED:
        messages.success(request, _("The import was cancelled before it ran."))
    else:
        messages.success(
            request,
            _("Cancel requested: the import stops at its next batch, and nothing of it is kept."),
        )
    return redirect("imports:detail", pk=job.pk)


@login_required
@require_POST
def import_retry(request, pk: int):
    _moderator_required(request)
    from imports.services import import_job_retry

    job = get_object_or_404(ImportJob, pk=pk)
    try:
        job = import_job_retry(job_id=job.pk, user=request.user)
    except JobConflict:
        job.refresh_from_db()
        message = _("Only a failed or cancelled import can be retried; this one is %(status)s.")
        return _conflict(request, job, message % {"status": job.get_status_display()})
    messages.success(request, _("The import was queued again; it runs from the start."))
    return redirect("imports:detail", pk=job.pk)


def _conflict(request, job: ImportJob, message: str):
    """409: the job changed since the page was loaded (another moderator, or its worker).
    The page is shown again as the job now is, with the reason on top."""
    messages.error(request, message)
    return render(request, "imports/detail.html", _detail_context(job), status=409)
