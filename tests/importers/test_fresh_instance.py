"""A team's first import on a new instance: migrated, one admin, no demo data, its ACLED file.

The counts per year, per city and per police response must be the file's own, counted here
from the rows themselves; a second import of the same file changes nothing.
"""

import collections

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.importers.conftest import acled_row, csv_bytes
from tracker.models import City, Event

pytestmark = pytest.mark.django_db

# (ACLED location as written, the city it is, its coordinates): names as ACLED and the press
# write them, Nur-Sultan for Astana included.
PLACES = [
    ("Almaty", "Almaty", "43.2567", "76.9286"),
    ("Nur-Sultan", "Astana", "51.1801", "71.446"),
    ("Astana", "Astana", "51.1801", "71.446"),
    ("Zhanaozen", "Zhanaozen", "43.3412", "52.8619"),
    ("Shymkent", "Shymkent", "42.3", "69.6"),
]
# ACLED sub_event_type and the police responses it means here.
SUB_EVENTS = {
    "Peaceful protest": set(),
    "Protest with intervention": {"dispersed"},
    "Excessive force against protesters": {"force"},
}


def _file() -> tuple[bytes, list[dict]]:
    rows, expected = [], []
    n = 0
    for year in range(2015, 2022):
        for place, city, lat, lon in PLACES:
            for sub_event, police in SUB_EVENTS.items():
                if (year + len(place) + len(sub_event)) % 3 == 0:
                    continue  # not every combination: the counts must differ
                n += 1
                rows.append(
                    acled_row(
                        event_id_cnty=f"KAZ{n}", event_date=f"{year}-0{1 + n % 9}-1{n % 9}",
                        year=str(year), sub_event_type=sub_event, location=place,
                        admin1="", latitude=lat, longitude=lon, notes="Protest.",
                    )
                )  # fmt: skip
                expected.append({"year": str(year), "city": city, "police": police})
    # Rows that are not protests, which the counts must not include.
    rows.append(
        acled_row(event_id_cnty="KAZX1", event_type="Battles", sub_event_type="Armed clash")
    )
    return csv_bytes(rows), expected


def _trends(api, **params) -> dict:
    response = api.get("/api/v1/stats/trends/", params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_first_acled_import_gives_the_files_counts_and_a_second_changes_nothing(settings, tmp_path):
    from django.core.files.base import ContentFile

    from imports.services import import_job_create, import_job_run

    settings.MEDIA_ROOT = tmp_path
    # As on a new instance (a test run may have left events of transactional tests behind).
    Event.objects.all().delete()
    assert City.objects.filter(country="KZ").count() > 20  # the gazetteer came with migrate
    admin = get_user_model().objects.create_superuser("admin", "admin@example.org", "x")
    data, expected = _file()

    def run():
        job = import_job_create(
            file=ContentFile(data, name="kazakhstan.csv"), format="acled", publish=True,
            user=admin, dispatch=False,
        )  # fmt: skip
        return import_job_run(job_id=job.pk)

    job = run()
    assert job.status == "succeeded", job.message
    assert (job.rows_created, job.rows_skipped, job.rows_failed) == (len(expected), 1, 0)
    assert (job.rows_placed_by_name, job.rows_unplaced) == (len(expected), 0)

    api = APIClient()
    per_year = collections.Counter(row["year"] for row in expected)
    assert {r["period"]: r["events"] for r in _trends(api, country="KZ")} == per_year
    per_city = collections.Counter(row["city"] for row in expected)
    by_city = collections.Counter()
    for r in _trends(api, by="city"):
        by_city[r["group"]] += r["events"]
    assert by_city == per_city
    per_police = collections.Counter(p for row in expected for p in row["police"])
    by_police = collections.Counter()
    for r in _trends(api, by="police_response"):
        by_police[r["group"]] += r["events"]
    assert by_police == per_police
    force = sum(1 for row in expected if "force" in row["police"])
    assert sum(r["events"] for r in _trends(api, police_response="force")) == force

    before = list(Event.objects.order_by("pk").values_list("pk", "version", "city_id"))
    again = run()
    assert again.status == "succeeded", again.message
    assert (again.rows_created, again.rows_updated, again.rows_unchanged) == (0, 0, len(expected))
    assert list(Event.objects.order_by("pk").values_list("pk", "version", "city_id")) == before
    assert {r["period"]: r["events"] for r in _trends(api, country="KZ")} == per_year
