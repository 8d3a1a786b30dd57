"""The HTML pages: map, dashboard, event, submit, review (the pages issue)."""

from django.urls import include, path

from pages import dashboard, views
from pages.event_list import event_list

urlpatterns = [
    path("", views.map_page, name="map"),
    path("embed/", views.embed_map, name="embed-map"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/<slug:chart>.csv", dashboard.dashboard_csv, name="dashboard-csv"),
    path("events/", event_list, name="event-list"),
    path("events/<int:pk>/", views.event_detail, name="event-detail"),
    path("submit/", views.submit, name="submit"),
    path("submit/mine/", views.my_submissions, name="my-submissions"),
    path("submit/cities/", views.city_suggestions, name="city-suggestions"),
    path("review/", views.review_queue, name="review-queue"),
    path("review/<int:pk>/", views.review_event, name="review-event"),
    path("review/<int:pk>/edit/", views.review_edit, name="review-edit"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("django.contrib.auth.urls")),
]
