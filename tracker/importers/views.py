"""Moderators' pages: upload a file to import, follow the job, read its report."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from tracker.history import is_moderator
from tracker.importers.forms import ImportUploadForm
from tracker.models import ImportJob

ISSUES_SHOWN = 100


def _moderator_required(request) -> None:
    if not is_moderator(request.user):
        raise PermissionDenied(_("Only moderators import events."))


@login_required
@require_http_methods(["GET", "POST"])
def import_list(request):
    _moderator_required(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        from tracker.services.imports import import_job_create

        try:
            job = import_job_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("imports:detail", pk=job.pk)
    jobs = ImportJob.objects.select_related(None).order_by("-created_at")[:50]
    status = 400 if request.method == "POST" else 200
    return render(request, "imports/list.html", {"form": form, "jobs": jobs}, status=status)


@login_required
@require_safe
def import_detail(request, pk: int):
    _moderator_required(request)
    from tracker.services.imports import import_job_progress

    job = get_object_or_404(ImportJob, pk=pk)
    done, total = import_job_progress(job=job)
    issues = job.issues.order_by("row", "id")[:ISSUES_SHOWN]
    return render(
        request,
        "imports/detail.html",
        {"job": job, "done": done, "total": total, "issues": issues, "shown": ISSUES_SHOWN},
    )
