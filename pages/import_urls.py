"""Moderators' upload and job pages under /review/imports/ (the import/export issue)."""

from django.urls import path

from pages import import_views as views

app_name = "imports"
urlpatterns = [
    path("", views.import_list, name="list"),
    path("<int:pk>/", views.import_detail, name="detail"),
    path("<int:pk>/cancel/", views.import_cancel, name="cancel"),
    path("<int:pk>/retry/", views.import_retry, name="retry"),
]
