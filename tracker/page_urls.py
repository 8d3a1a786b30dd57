"""The HTML pages: map, dashboard, event, submit, review (the pages issue)."""

urlpatterns: list = []
