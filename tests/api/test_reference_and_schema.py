"""Taxonomy, cities, the OpenAPI schema and the Swagger UI page."""

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command

from tracker import taxonomy

pytestmark = pytest.mark.django_db


def test_taxonomy_in_three_languages(api):
    body = api.get("/api/v1/taxonomy/").json()
    assert body["language"] == "en"
    assert [t["slug"] for t in body["grievances"]] == list(taxonomy.GRIEVANCE_SLUGS)
    assert [t["slug"] for t in body["police_responses"]] == list(taxonomy.POLICE_RESPONSE_SLUGS)
    rights = next(t for t in body["grievances"] if t["slug"] == "human_rights")
    assert rights["label"] == "Human rights"
    assert rights["labels"] == {
        "en": "Human rights",
        "ru": "Права человека",
        "kk": "Адам құқықтары",
    }
    force = next(t for t in body["police_responses"] if t["slug"] == "force")
    assert force["force"] and force["intervention"]
    assert [t["severity"] for t in body["police_responses"]] == list(range(8))

    ru = api.get("/api/v1/taxonomy/?lang=ru").json()
    assert ru["language"] == "ru"
    assert ru["grievances"][1]["label"] == "Права человека"
    kk = api.get("/api/v1/taxonomy/", HTTP_ACCEPT_LANGUAGE="kk").json()
    assert kk["language"] == "kk"
    assert kk["grievances"][1]["label"] == "Адам құқықтары"


@pytest.mark.parametrize("q", ["alm", "Алм", "alma-a", "ALMATY"])
def test_city_search_by_any_name(api, q):
    body = api.get("/api/v1/cities/", {"q": q}).json()
    assert body["results"][0]["name"] == "Almaty"
    assert body["results"][0]["country"] == "KZ"


def test_city_search_old_names_labels_and_country(api):
    body = api.get("/api/v1/cities/?q=nur-sult&lang=kk").json()
    (astana,) = [c for c in body["results"] if c["country"] == "KZ"][:1]
    assert astana["label"] == astana["name_kk"] and astana["name_kk"]
    assert api.get("/api/v1/cities/?q=bish&country=KZ").json()["results"] == []
    assert api.get("/api/v1/cities/?q=bish&country=kg").json()["results"][0]["name"] == "Bishkek"
    body = api.get("/api/v1/cities/?limit=5", HTTP_ACCEPT_LANGUAGE="ru").json()
    assert len(body["results"]) == 5
    assert body["results"][0]["label"] == body["results"][0]["name_ru"]


def test_city_detail(api):
    city_id = api.get("/api/v1/cities/?q=almaty").json()["results"][0]["id"]
    body = api.get(f"/api/v1/cities/{city_id}/?lang=ru").json()
    assert body["label"] == "Алматы"
    assert 76 < body["longitude"] < 78


def test_city_search_query_count_is_fixed(api, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert len(api.get("/api/v1/cities/?limit=100").json()["results"]) == 100


def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/events/", "/api/v1/events/{id}/review/", "/api/v1/stats/trends/",
                 "/api/v1/taxonomy/", "/api/v1/cities/", "/api/v1/auth/token/",
                 "/api/v1/events/{id}/history/", "/api/v1/submissions/"):  # fmt: skip
        assert f"{path}:" in text, path
    assert "submitted_by" not in text


def test_schema_endpoint(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_swagger_ui_served_locally_without_inline_script(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # Every script is a file of this app (the sidecar), none inline, no CDN.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts
    for attributes, body in scripts:
        assert body.strip() == ""
        src = re.search(r'src="([^"]+)"', attributes).group(1)
        assert src.startswith("/"), src
        # Served by whitenoise from collectstatic's output in production; here the file
        # must at least be found by the static finders.
        if src.startswith(settings.STATIC_URL):
            assert finders.find(src.split("?")[0].removeprefix(settings.STATIC_URL)), src
        else:  # the split view's initialiser, a script file of its own
            script = client.get(src)
            assert script.status_code == 200
            assert "javascript" in script["Content-Type"]
            assert b"SwaggerUIBundle" in script.content
    assert "cdn" not in html.lower()
    assert "<style" not in html  # style-src 'self' would refuse it
    assert "script-src 'self'" in response["Content-Security-Policy"]
