from collections import Counter

import pytest
from django.db import connection

from tracker import taxonomy
from tracker.models import Event, ExternalId
from tracker.services.demo import all_demo_events, demo_load

pytestmark = pytest.mark.django_db

PUBLISHED_KZ = Event.objects.published().filter(country="KZ")


def test_events_per_year_match_the_published_figures():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(year FROM date)::int, count(*) FROM tracker_event "
            "WHERE status = 'published' AND country = 'KZ' GROUP BY 1 ORDER BY 1"
        )
        per_year = dict(cursor.fetchall())
    assert {y: per_year[y] for y in range(2015, 2021)} == {
        2015: 71,
        2016: 52,
        2017: 36,
        2018: 32,
        2019: 235,
        2020: 254,
    }


@pytest.mark.parametrize(
    ("year", "grievance", "percent"),
    [
        (2019, "human_rights", 49),
        (2019, "welfare", 21),
        (2020, "human_rights", 30),
        (2020, "welfare", 38),
    ],
)
def test_grievance_shares_match_the_published_percentages(year, grievance, percent):
    events = PUBLISHED_KZ.filter(date__year=year)
    share = 100 * events.filter(grievances__contains=[grievance]).count() / events.count()
    assert round(share) == percent


def test_almaty_and_nur_sultan_lead():
    counts = Counter(PUBLISHED_KZ.exclude(city=None).values_list("city__name", flat=True))
    assert [name for name, _ in counts.most_common(2)] == ["Almaty", "Astana"]
    for other in ("Aktau", "Shymkent", "Karaganda", "Pavlodar", "Zhanaozen", "Kyzylorda", "Aktobe"):
        assert counts[other] > 0, other


def test_more_than_half_see_police_intervention():
    years = PUBLISHED_KZ.filter(date__year__range=(2015, 2020))
    intervened = years.filter(police_responses__overlap=list(taxonomy.INTERVENTION_RESPONSES))
    assert intervened.count() > years.count() / 2


def test_real_events_carry_their_figures_and_the_article():
    def real(key):
        return ExternalId.objects.get(scheme="demo", value=key).event

    june_2019 = real("real-2019-06-09")
    assert june_2019.arrests == 500 and june_2019.police_responses == ["detained"]
    election_2021 = real("real-2021-01-10-detentions")
    assert election_2021.arrests == 360
    square = real("real-2021-01-10-almaty")
    assert square.police_responses == ["kettled"] and square.location_detail == "Republic Square"
    assert square.city.name == "Almaty" and square.geo_precision == 1
    assert real("real-2020-06-06").police_responses == ["kettled"]
    assert real("real-2020-12-16").police_responses == ["kettled"]
    custody = real("real-2020-02-25")
    assert custody.city.name == "Astana" and "human_rights" in custody.grievances
    for key in ("real-2019-06-09", "real-2020-02-25", "real-2021-01-10-almaty"):
        event = real(key)
        assert not event.is_generated
        assert event.sources.filter(title__icontains="Kazakhstan").exists()


def test_generated_events_are_marked_and_sourced():
    generated = PUBLISHED_KZ.filter(is_generated=True)
    assert generated.count() == 680 - 4  # four real events fall in 2015-2020
    assert not generated.filter(sources=None).exists()


def test_demo_is_deterministic_and_idempotent():
    assert [e.key for e in all_demo_events()] == [e.key for e in all_demo_events()]
    assert all_demo_events()[100].date == all_demo_events()[100].date
    before = Event.objects.count()
    assert demo_load()["events_created"] == 0
    assert Event.objects.count() == before
