"""Bulk import jobs and layout exports under /api/v1/ (the import/export issue)."""

from django.urls import path

from api.imports import views

urlpatterns = [
    path("imports/", views.ImportJobListView.as_view(), name="import-list"),
    path("imports/<int:pk>/", views.ImportJobDetailView.as_view(), name="import-detail"),
    path("imports/<int:pk>/cancel/", views.ImportJobCancelView.as_view(), name="import-cancel"),
    path("imports/<int:pk>/retry/", views.ImportJobRetryView.as_view(), name="import-retry"),
    path("imports/<int:pk>/report.csv", views.ImportReportView.as_view(), name="import-report"),
    path("exports/jobs/", views.ExportJobListView.as_view(), name="export-job-list"),
    path("exports/jobs/<int:pk>/", views.ExportJobDetailView.as_view(), name="export-job"),
    path(
        "exports/jobs/<int:pk>/cancel/", views.ExportJobCancelView.as_view(), name="export-cancel"
    ),
    path("exports/jobs/<int:pk>/retry/", views.ExportJobRetryView.as_view(), name="export-retry"),
    path("exports/jobs/<int:pk>/file", views.ExportJobFileView.as_view(), name="export-job-file"),
    path("exports/events.geojson", views.GeoJSONExportView.as_view(), name="export-geojson"),
    path("exports/<str:layout>.csv", views.LayoutExportView.as_view(), name="export-layout"),
]
