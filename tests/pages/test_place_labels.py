"""The basemap's place labels: the gazetteer's cities in the page's language, largest first,
in the map's configuration (the embedded map's too)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tracker.models import City

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "almaty", "astana"), [("en", "Almaty", "Astana"), ("ru", "Алматы", "Астана")]
)
@pytest.mark.parametrize("name", ["map", "embed-map"])
def test_the_map_config_names_the_cities_in_the_page_language(
    client, name, language, almaty, astana
):
    response = client.get(reverse(name), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    places = response.context["map_config"]["places"]
    names = [place[0] for place in places]
    assert almaty in names and astana in names
    populations = [place[3] for place in places]
    assert populations == sorted(populations, reverse=True)
    city = City.objects.get(name="Almaty", country="KZ")
    row = places[names.index(almaty)]
    assert row[1:] == [round(city.location.y, 4), round(city.location.x, 4), city.population]
    assert len(places) == min(City.objects.count(), 1000)


def test_kazakh_falls_back_to_russian_then_english(client):
    city = City.objects.filter(name_kk="").exclude(name_ru="").order_by("-population").first()
    places = client.get(reverse("map"), HTTP_ACCEPT_LANGUAGE="kk").context["map_config"]["places"]
    names = [place[0] for place in places]
    if city is not None:
        assert city.name_ru in names
    assert "Бішкек" in names
