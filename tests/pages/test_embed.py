"""/embed/: the map alone, framable only by the origins of EMBED_ALLOWED_ORIGINS; every
other page keeps refusing frames."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PARTNERS = ["https://partner.example", "http://127.0.0.1:8765"]


def directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in policy.split(";")
        if part.strip()
    }


def test_embed_refuses_frames_when_no_origin_is_allowed(client, settings):
    settings.EMBED_ALLOWED_ORIGINS = []
    response = client.get(reverse("embed-map"), {"year": "2019"})
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert directives(response)["frame-ancestors"] == "'none'"


def test_embed_may_be_framed_by_the_allowed_origins_only(client, settings):
    settings.EMBED_ALLOWED_ORIGINS = PARTNERS
    response = client.get(reverse("embed-map"), {"year": "2019"})
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    assert directives(response)["frame-ancestors"] == "'self' " + " ".join(PARTNERS)
    # The rest of the policy is the site's: no inline script, no other origin.
    assert directives(response)["script-src"] == "'self'"


@pytest.mark.parametrize("name", ["map", "event-list", "dashboard"])
def test_other_pages_keep_refusing_frames_when_origins_are_allowed(client, settings, name):
    settings.EMBED_ALLOWED_ORIGINS = PARTNERS
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert directives(response)["frame-ancestors"] == "'none'"


def test_embed_is_the_map_alone_with_a_link_to_the_tracker(client):
    response = client.get(reverse("embed-map"), {"year": "2019", "grievance": "welfare"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="map"' in html and 'id="map-status"' in html
    # No site header (navigation, language, log in) and no filter panel.
    assert "site-header" not in html and "<nav" not in html
    assert 'id="filters"' not in html and "lang-form" not in html
    assert "<script>" not in html  # no inline script (CSP)
    assert response.context["map_config"]["embed"] is True
    link = response.context["tracker_url"]
    assert link == reverse("map") + "?year=2019&grievance=welfare"
    assert f'href="{link.replace("&", "&amp;")}" target="_blank" rel="noopener"' in html


@pytest.mark.parametrize(
    "query",
    [{"bogus": "1"}, {"year": "soon"}, {"grievance": "nonsense"}],
)
def test_embed_refuses_what_the_map_page_refuses(client, query):
    embed = client.get(reverse("embed-map"), query)
    page = client.get(reverse("map"), query)
    assert page.status_code == embed.status_code == 400
    assert embed.context["map_config"]["valid"] is False
    assert page.context["form"].errors == embed.context["form"].errors
    assert 'role="alert"' in embed.content.decode()


def test_embed_takes_the_map_colour_parameter(client):
    assert client.get(reverse("embed-map"), {"colour": "police"}).status_code == 200
