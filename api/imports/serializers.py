"""Import and export jobs as API clients see them."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from tracker.models import ExportJob, ExportLayout, ImportFormat, ImportJob


class ImportJobSerializer(serializers.ModelSerializer):
    format = serializers.CharField(read_only=True)
    counts = serializers.SerializerMethodField()
    places = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    report_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id", "format", "original_name", "publish", "status", "message", "progress",
            "counts", "places", "conflicts", "report_url", "attempts", "cancel_requested",
            "heartbeat_at", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_counts(self, job: ImportJob) -> dict[str, int]:
        return {
            "created": job.rows_created,
            "updated": job.rows_updated,
            "unchanged": job.rows_unchanged,
            "skipped": job.rows_skipped,
            "failed": job.rows_failed,
        }

    conflicts = serializers.IntegerField(
        source="rows_conflicts",
        read_only=True,
        help_text="Rows where a moderator's correction was kept over the file's new value; "
        "each field is a row of the report (kind conflict).",
    )

    def get_places(self, job: ImportJob) -> dict[str, int]:
        """How the gazetteer placed the rows imported (created or updated)."""
        return {
            "by_name": job.rows_placed_by_name,
            "by_point": job.rows_placed_by_point,
            "unplaced": job.rows_unplaced,
        }

    def get_progress(self, job: ImportJob) -> dict[str, int]:
        from imports.services import import_job_progress

        done, total = import_job_progress(job=job)
        return {"done": done, "total": total}

    def get_report_url(self, job: ImportJob) -> str:
        return reverse("api:import-report", args=[job.pk])


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The file to import (CSV, or GeoJSON for native).")
    format = serializers.ChoiceField(
        choices=ImportFormat.choices,
        error_messages={
            "invalid_choice": f'"{{input}}" is not a format. Choose from: '
            f"{', '.join(ImportFormat.values)}."
        },
    )
    publish = serializers.BooleanField(
        default=False, help_text="Trusted source: the events arrive published, not pending."
    )


class ExportJobSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id", "layout", "query", "status", "message", "rows_written", "download_url",
            "attempts", "cancel_requested", "heartbeat_at", "created_at", "started_at",
            "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_download_url(self, job: ExportJob) -> str | None:
        if job.status != ExportJob.Status.SUCCEEDED:
            return None
        return reverse("api:export-job-file", args=[job.pk])


class ExportRequestSerializer(serializers.Serializer):
    layout = serializers.ChoiceField(choices=ExportLayout.choices)
    query = serializers.CharField(
        required=False, allow_blank=True, max_length=4000,
        help_text="The event filters as a query string, e.g. year=2020&country=KZ.",
    )  # fmt: skip
