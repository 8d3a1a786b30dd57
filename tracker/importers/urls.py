"""Moderators' upload and job pages under /review/imports/ (the import/export issue)."""

from django.urls import path

from tracker.importers import views

app_name = "imports"
urlpatterns = [
    path("", views.import_list, name="list"),
    path("<int:pk>/", views.import_detail, name="detail"),
]
