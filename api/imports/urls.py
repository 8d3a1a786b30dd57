"""Bulk import jobs and layout exports under /api/v1/ (the import/export issue)."""

urlpatterns: list = []
