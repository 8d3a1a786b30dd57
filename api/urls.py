"""REST API v1, mounted at /api/v1/. The endpoints come with the REST API issue."""

app_name = "api"
urlpatterns: list = []
