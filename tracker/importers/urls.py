"""Moderators' upload and job pages under /review/imports/ (the import/export issue)."""

app_name = "imports"
urlpatterns: list = []
