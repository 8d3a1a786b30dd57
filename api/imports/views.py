"""Import jobs (moderators) and exports in ACLED-like and CCC-like layouts."""

from __future__ import annotations

import csv

from django.core.exceptions import ValidationError
from django.http import FileResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.exceptions import Conflict
from api.filtering import EventFilterBackend
from api.imports.serializers import (
    ExportJobSerializer,
    ExportRequestSerializer,
    ImportJobSerializer,
    ImportUploadSerializer,
)
from api.renderers import GeoJSONRenderer, JSONRenderer
from imports.jobs import JobConflict, StorageUnavailable
from tracker.csv_safety import csv_row
from tracker.history import is_moderator
from tracker.models import Event, ExportJob, ExportLayout, ImportJob
from tracker.query import EventFilterSet


class StorageFull(APIException):
    """The media folder cannot take the upload (full or read-only). 503, not 507: it is the
    server's condition, it passes once space is freed, and clients know to retry a 503 after
    Retry-After (DRF sends that header for an exception with `wait`)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "storage_unavailable"
    wait = 600


class IsModerator(BasePermission):
    message = "Only moderators can import events."

    def has_permission(self, request, view) -> bool:
        return is_moderator(request.user)


class _Echo:
    def write(self, value: str) -> str:
        return value


class ImportJobListView(ListAPIView):
    """GET: the import jobs, newest first. POST (multipart): upload a file to import."""

    permission_classes = [IsModerator]
    serializer_class = ImportJobSerializer
    # Multipart only: DRF's FormParser reads a url-encoded body without any size limit.
    parser_classes = [MultiPartParser]
    queryset = ImportJob.objects.all()

    @extend_schema(request=ImportUploadSerializer, responses={202: ImportJobSerializer})
    def post(self, request):
        from imports.services import import_job_create

        upload = ImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        try:
            job = import_job_create(user=request.user, **upload.validated_data)
        except ValidationError as exc:
            raise ApiValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            ) from None
        except StorageUnavailable as exc:
            raise StorageFull(str(exc)) from None
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportJobDetailView(APIView):
    permission_classes = [IsModerator]

    @extend_schema(responses=ImportJobSerializer)
    def get(self, request, pk: int):
        return Response(ImportJobSerializer(get_object_or_404(ImportJob, pk=pk)).data)


def _job_action(action, serializer_class, **kwargs):
    try:
        job = action(**kwargs)
    except JobConflict as exc:
        raise Conflict(str(exc)) from None
    return Response(serializer_class(job).data)


class ImportJobCancelView(APIView):
    """POST: cancel the job. A queued job is cancelled at once; a running one stops at its
    next batch, and nothing of it is imported. 409 for a finished job."""

    permission_classes = [IsModerator]

    @extend_schema(request=None, responses={200: ImportJobSerializer, 409: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        from imports.services import import_job_cancel

        job = get_object_or_404(ImportJob, pk=pk)
        return _job_action(import_job_cancel, ImportJobSerializer, job_id=job.pk, user=request.user)


class ImportJobRetryView(APIView):
    """POST: queue a failed or cancelled job again, from the start. 409 for any other."""

    permission_classes = [IsModerator]

    @extend_schema(request=None, responses={200: ImportJobSerializer, 409: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        from imports.services import import_job_retry

        job = get_object_or_404(ImportJob, pk=pk)
        return _job_action(import_job_retry, ImportJobSerializer, job_id=job.pk, user=request.user)


class ImportReportView(APIView):
    """The row-level report: row, column, value, reason, kind (skipped or failed)."""

    permission_classes = [IsModerator]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, pk: int):
        from imports.services import report_rows

        job = get_object_or_404(ImportJob, pk=pk)
        writer = csv.writer(_Echo())
        lines = (writer.writerow(csv_row(row)) for row in report_rows(job=job))
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-report.csv"'
        return response


class LayoutExportView(APIView):
    """Published events in an ACLED-like or CCC-like CSV layout, with the same filters as
    /api/v1/events/; streamed, so any number of rows."""

    permission_classes = []

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, layout: str):
        from api.filtering import valid_filterset
        from imports.exports import export_csv_lines
        from tracker.models import Event

        if layout not in ExportLayout.values:
            raise NotFound(f"Unknown layout; choose from {', '.join(ExportLayout.values)}.")
        filterset = valid_filterset(
            request, queryset=Event.objects.published(), extra_params=("format",)
        )
        lines = export_csv_lines(events=filterset.qs, layout=layout)
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="events-{layout}.csv"'
        return response


class GeoJSONExportView(GenericAPIView):
    """Published events as one GeoJSON FeatureCollection (the Features of
    /api/v1/events/?format=geojson, all of them, by date), with the same filters; streamed,
    so any number of rows, for GIS tools that read a file rather than pages."""

    permission_classes = []
    # `Accept: application/geo+json` and `?format=geojson` are welcome; errors are JSON.
    renderer_classes = [GeoJSONRenderer, JSONRenderer]
    filter_backends = [EventFilterBackend]
    filterset_class = EventFilterSet
    query_params_of_view = ("format",)
    pagination_class = None

    def get_queryset(self):
        return Event.objects.published()

    @extend_schema(
        operation_id="v1_exports_events_geojson_retrieve",
        responses={(200, "application/geo+json"): OpenApiTypes.OBJECT},
    )
    def get(self, request):
        from imports.exports import event_geojson_blocks

        events = self.filter_queryset(self.get_queryset())
        response = StreamingHttpResponse(
            event_geojson_blocks(events), content_type="application/geo+json"
        )
        response["Content-Disposition"] = 'attachment; filename="events.geojson"'
        return response


class ExportJobListView(APIView):
    """POST {layout, query}: write a very large export to a file in the background."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=ExportRequestSerializer, responses={202: ExportJobSerializer})
    def post(self, request):
        from api.filtering import filter_validation_error
        from imports.exports import export_job_create
        from tracker.models import Event
        from tracker.query import EventFilterSet

        payload = ExportRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        from django.http import QueryDict

        query = payload.validated_data.get("query", "")
        filterset = EventFilterSet(data=QueryDict(query), queryset=Event.objects.published())
        if not filterset.is_valid():
            raise ApiValidationError({"query": filter_validation_error(filterset).detail})
        job = export_job_create(
            layout=payload.validated_data["layout"], query=query, user=request.user
        )
        return Response(ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def _own_export(request, pk: int) -> ExportJob:
    jobs = ExportJob.objects.all()
    if not is_moderator(request.user):
        jobs = jobs.filter(created_by=request.user)
    return get_object_or_404(jobs, pk=pk)


class ExportJobDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=ExportJobSerializer)
    def get(self, request, pk: int):
        return Response(ExportJobSerializer(_own_export(request, pk)).data)


class ExportJobFileView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, pk: int):
        job = _own_export(request, pk)
        if job.status != ExportJob.Status.SUCCEEDED or not job.file:
            raise NotFound("The export is not ready yet.")
        return FileResponse(
            job.file.open("rb"), as_attachment=True, filename=f"events-{job.layout}-{job.pk}.csv"
        )


class ExportJobCancelView(APIView):
    """POST (the export's owner or a moderator): cancel it; 409 when it has finished."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: ExportJobSerializer, 409: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        from imports.exports import export_job_cancel

        job = _own_export(request, pk)
        return _job_action(export_job_cancel, ExportJobSerializer, job_id=job.pk, user=request.user)


class ExportJobRetryView(APIView):
    """POST (the export's owner or a moderator): run a failed or cancelled export again."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: ExportJobSerializer, 409: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        from imports.exports import export_job_retry

        job = _own_export(request, pk)
        return _job_action(export_job_retry, ExportJobSerializer, job_id=job.pk, user=request.user)
