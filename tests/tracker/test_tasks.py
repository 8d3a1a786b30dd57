"""The Celery round trip through Redis with a real worker (not eager mode)."""

import datetime as dt
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.gis.geos import Point

from config.celery import app
from tracker.models import Event
from tracker.services.events import event_create
from tracker.tasks import event_geocode, heartbeat


@pytest.fixture
def celery_worker(demo):
    assert not app.conf.task_always_eager
    # A real worker consuming the test queue on the real Redis broker, in a thread of this
    # process so that it uses the test database.
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_new_event_placed_by_coordinates_gets_its_city_from_the_worker(celery_worker):
    event = event_create(
        fields={
            "title": "Picket near the akimat",
            "date": dt.date(2020, 7, 1),
            "country": "KZ",
            "location": Point(71.43, 51.13, srid=4326),
            "grievances": ["welfare"],
        }
    )
    assert event.city is None  # the service only queued the job, on commit
    deadline = time.monotonic() + 30
    while event.city_id is None and time.monotonic() < deadline:
        time.sleep(0.1)
        event.refresh_from_db()
    assert event.city.name == "Astana"
    assert event.admin1 == "Astana"
    assert event.geo_precision == Event.GeoPrecision.EXACT  # the given point is kept
    # Idempotent: running it again changes nothing.
    assert event_geocode.delay(event.pk).get(timeout=30)["changed"] is False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_heartbeat_round_trip_shows_in_health(celery_worker, client):
    stamp = heartbeat.delay().get(timeout=30)
    body = client.get("/healthz").json()
    assert body["checks"]["celery"]["last_heartbeat"] == stamp
