"""The rollup tables (migration 0008) and tracker.rollups.rollup_counts, against real PostGIS.

Every check compares rollup_counts with a reference computed here in Python from the
published events themselves, for a grid of filters x by x interval, after each kind of
write the triggers must follow: bulk and single inserts, edits that move an event,
status changes, deletes, an import through the importer, a rolled-back transaction and a
TRUNCATE.
"""

import datetime as dt
import importlib
from collections import defaultdict

import pytest
from django.core.files.base import ContentFile
from django.db import connection, transaction

from tests.importers.conftest import acled_row, csv_bytes
from tracker import taxonomy
from tracker.models import City, Event
from tracker.rollups import MEASURES, rollup_counts

pytestmark = pytest.mark.django_db

TABLES = (
    "tracker_rollup_place",
    "tracker_rollup_place_year",
    "tracker_rollup_term_year",
    "tracker_rollup_term_region_year",
    "tracker_rollup_gset_year",
    "tracker_rollup_gset_region_year",
    "tracker_rollup_rset_year",
    "tracker_rollup_rset_region_year",
    "tracker_rollup_grset_year",
    "tracker_rollup_grset_all_year",
    "tracker_rollup_place_country",
    "tracker_rollup_term_country",
    "tracker_rollup_term",
    "tracker_rollup_term_region",
    "tracker_rollup_gset",
    "tracker_rollup_gset_region",
    "tracker_rollup_rset",
    "tracker_rollup_rset_region",
    "tracker_rollup_grset",
    "tracker_rollup_sets",
    "tracker_rollup_allof",
    "tracker_rollup_allof_year",
)
INTERVALS = ("year", "quarter", "month")
BYS = (None, "grievance", "police_response", "city", "country", "admin1")


def _period(day: dt.date, interval: str) -> dt.date:
    if interval == "year":
        return dt.date(day.year, 1, 1)
    if interval == "quarter":
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return dt.date(day.year, day.month, 1)


def _matches(event: dict, filters: dict) -> bool:
    low, high = filters.get("date_after"), filters.get("date_before")
    if filters.get("year") and event["date"].year != filters["year"]:
        return False
    if (low and event["date"] < low) or (high and event["date"] > high):
        return False
    if filters.get("country") and event["country"] not in filters["country"]:
        return False
    regions = [region.upper() for region in filters.get("admin1") or []]
    if regions and event["admin1"].upper() not in regions:
        return False
    if filters.get("city") and event["city_id"] not in filters["city"]:
        return False
    if filters.get("grievance") and not set(filters["grievance"]) & set(event["grievances"]):
        return False
    responses = set(filters.get("police_response") or [])
    return not (responses and not responses & set(event["police_responses"]))


def reference(filters: dict, interval: str, by: str | None) -> list[dict]:
    """The plain GROUP BY, in Python, over every published event."""
    events = list(
        Event.objects.filter(status="published").values(
            "date",
            "country",
            "admin1",
            "city_id",
            "grievances",
            "police_responses",
            "arrests",
            "injuries",
            "deaths",
            "participants_low",
            "participants_high",
        )
    )
    totals: dict = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    for event in events:
        if not _matches(event, filters):
            continue
        if by in ("grievance", "police_response"):
            groups = event["grievances" if by == "grievance" else "police_responses"]
        elif by == "city":
            groups = [event["city_id"]]
        elif by is not None:
            groups = [event[by]]
        else:
            groups = [None]
        for group in groups:  # unnest(): once per occurrence
            cell = totals[(_period(event["date"], interval), group)]
            cell["events"] += 1
            cell["arrests"] += event["arrests"] or 0
            cell["events_with_arrests"] += (event["arrests"] or 0) > 0
            cell["events_with_force"] += bool(
                taxonomy.FORCE_RESPONSES & set(event["police_responses"])
            )
            cell["injuries"] += event["injuries"] or 0
            cell["deaths"] += event["deaths"] or 0
            cell["participants_low"] += event["participants_low"] or 0
            cell["participants_high"] += event["participants_high"] or 0
            cell["events_with_participants"] += (
                event["participants_low"] is not None or event["participants_high"] is not None
            )
    rows = []
    for (period, group), values in sorted(
        totals.items(), key=lambda item: (item[0][0], item[0][1] is None, item[0][1])
    ):
        row = {"period": period}
        if by is not None:
            row["group"] = group
        row.update(values)
        rows.append(row)
    return rows


@pytest.fixture
def places():
    cities = list(City.objects.filter(country="KZ").exclude(admin1="").order_by("id")[:3])
    assert len(cities) == 3, "the gazetteer should be loaded in the test database"
    return cities


def filter_grid(places) -> list[dict]:
    a, b, _ = places
    return [
        {},
        {"year": 2020},
        {"date_after": dt.date(2020, 1, 1), "date_before": dt.date(2020, 6, 30)},
        {"date_after": dt.date(2019, 3, 15), "date_before": dt.date(2021, 2, 10)},  # partial
        {"date_after": dt.date(2020, 5, 3), "date_before": dt.date(2020, 5, 20)},  # one month
        {"date_after": dt.date(2020, 5, 2)},
        {"date_before": dt.date(2020, 5, 30), "year": 2020},
        {"country": ["KZ"]},
        {"country": ["KZ", "KG"], "year": 2020},
        {"admin1": [a.admin1.lower()]},
        {"city": [a.pk, b.pk]},
        {"grievance": ["labor"]},
        {"grievance": ["labor"], "city": [a.pk]},
        {"police_response": ["detained"], "admin1": [b.admin1]},
        {"grievance": ["labor", "welfare"]},
        {"grievance": ["labor"], "police_response": ["force", "detained"], "country": ["KZ"]},
        {"police_response": ["detained", "force"], "date_after": dt.date(2020, 2, 14)},
        {"grievance": ["labor", "welfare"], "admin1": [b.admin1.upper()]},
        {"police_response": ["force", "lethal"], "admin1": [a.admin1], "year": 2020},
        {"grievance": ["land"], "police_response": ["force"]},
        {"grievance": ["labor", "welfare"], "city": [a.pk]},  # the all-of cells (0017)
        {"grievance": ["labor", "land"], "police_response": ["force", "detained"]},
        {"grievance": ["labor", "welfare"], "police_response": ["detained"], "admin1": [b.admin1]},
        {"grievance": ["labor", "welfare", "land"], "police_response": ["detained", "force"]},
        {"q": "pensions"},  # not answered
        {"grievance": [], "q": "", "in_bbox": None},  # empty values of other keys are fine
    ]


def check_all(places) -> int:
    """rollup_counts equals the reference wherever it answers; returns how many it did."""
    with connection.cursor() as cursor:  # the sets listed are the sets of published events
        cursor.execute(
            "SELECT DISTINCT 'g', tracker_grievance_mask(grievances) FROM tracker_event "
            "WHERE status = 'published' UNION SELECT DISTINCT 'p', "
            "tracker_police_mask(police_responses) FROM tracker_event "
            "WHERE status = 'published' ORDER BY 1, 2"
        )
        expected_sets = cursor.fetchall()
        cursor.execute("SELECT vocabulary, mask FROM tracker_rollup_sets ORDER BY 1, 2")
        assert cursor.fetchall() == expected_sets
    answered = 0
    for filters in filter_grid(places):
        for interval in INTERVALS:
            for by in BYS:
                got = rollup_counts(filters=filters, interval=interval, by=by)
                if got is None:
                    continue
                answered += 1
                assert got == reference(filters, interval, by), (filters, interval, by)
    return answered


def _make(place: City, **values) -> Event:
    defaults = {
        "title": "Rollup test",
        "date": dt.date(2020, 5, 10),
        "country": place.country,
        "admin1": place.admin1,
        "city": place,
        "grievances": ["labor"],
        "police_responses": ["detained"],
        "arrests": 3,
        "injuries": 1,
        "participants_low": 10,
        "participants_high": 40,
        "status": Event.Status.PUBLISHED,
    }
    defaults.update(values)
    return Event(**defaults)


def _snapshot() -> dict:
    with connection.cursor() as cursor:
        out = {}
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {table}")
            out[table] = sorted(cursor.fetchall(), key=repr)
        return out


def test_force_responses_match_the_migration():
    migration = importlib.import_module("tracker.migrations.0008_rollups")
    slugs = ",".join(sorted(taxonomy.FORCE_RESPONSES))
    assert f"'{{{slugs}}}'::varchar[]" == migration.FORCE
    from tracker import rollups

    assert set(rollups.FORCE) == set(taxonomy.FORCE_RESPONSES)


def test_mask_bits_match_the_taxonomy():
    """The set tables' bit order is the taxonomy's: a slug added to the taxonomy fails here
    (and needs a migration that replaces the mask functions) instead of miscounting."""
    migration = importlib.import_module("tracker.migrations.0008_rollups")
    from tracker import rollups

    assert migration.GRIEVANCE_SLUGS == rollups.GRIEVANCE_BITS == taxonomy.GRIEVANCE_SLUGS
    assert (
        migration.POLICE_RESPONSE_SLUGS
        == rollups.POLICE_RESPONSE_BITS
        == taxonomy.POLICE_RESPONSE_SLUGS
    )
    assert len(taxonomy.GRIEVANCE_SLUGS) <= 31 and len(taxonomy.POLICE_RESPONSE_SLUGS) <= 31
    with connection.cursor() as cursor:
        for function, slugs in (
            ("tracker_grievance_mask", taxonomy.GRIEVANCE_SLUGS),
            ("tracker_police_mask", taxonomy.POLICE_RESPONSE_SLUGS),
        ):
            for number, slug in enumerate(slugs):
                cursor.execute(f"SELECT {function}(ARRAY[%s]::varchar[])", [slug])
                assert cursor.fetchone()[0] == 1 << number, (function, slug)
            cursor.execute(f"SELECT {function}(%s::varchar[])", [list(slugs)])
            assert cursor.fetchone()[0] == (1 << len(slugs)) - 1
            # Empty; a repeated slug and an unknown one set bit 31 (the mask is negative).
            cursor.execute(
                f"SELECT {function}('{{}}'), {function}(ARRAY[%s, %s]::varchar[]), "
                f"{function}(ARRAY[%s, 'no_such_slug']::varchar[])",
                [slugs[1], slugs[1], slugs[0]],
            )
            assert cursor.fetchone() == (0, 2 - 2**31, 1 - 2**31)


def test_which_cases_are_answered(places):
    a = places[0]
    answered = [
        ({}, "year", None),
        ({}, "month", "city"),
        ({}, "quarter", "admin1"),
        ({}, "year", "grievance"),
        ({"city": [a.pk]}, "year", "police_response"),
        ({"grievance": ["labor"]}, "month", None),
        ({"grievance": ["labor"]}, "year", "city"),
        ({"police_response": ["force"], "admin1": ["X"]}, "year", "admin1"),
        ({"grievance": ["labor", "land"]}, "year", None),
        ({"grievance": ["labor"], "police_response": ["force"]}, "year", "country"),
        ({"police_response": ["detained", "force"], "country": ["KZ"]}, "year", "grievance"),
        ({"grievance": ["labor"]}, "year", "grievance"),
        ({"date_after": dt.date(2020, 3, 15), "year": 2020}, "month", None),
        # Sets: from the set tables, the region variants for admin1.
        ({"grievance": ["labor", "land"]}, "month", "grievance"),
        ({"grievance": ["labor", "land"], "admin1": ["X"]}, "year", "admin1"),
        ({"grievance": ["labor", "land"]}, "year", "admin1"),
        ({"police_response": ["force", "detained"], "admin1": ["X"]}, "month", None),
        ({"police_response": ["force", "detained"]}, "year", "police_response"),
        ({"grievance": ["labor"], "police_response": ["force"]}, "year", "police_response"),
        ({"grievance": ["labor"]}, "year", "police_response"),
        ({"police_response": ["force"], "country": ["KZ"]}, "month", "grievance"),
        # Sets by city, in a city, or both vocabularies in a region: the all-of cells.
        ({"grievance": ["labor", "land"], "city": [a.pk]}, "year", None),
        ({"grievance": ["labor"], "police_response": ["force"]}, "year", "city"),
        ({"grievance": ["labor"], "police_response": ["force"], "admin1": ["X"]}, "year", None),
        ({"grievance": ["labor", "land"], "police_response": ["force"]}, "month", "city"),
        ({"grievance": ["labor", "land", "welfare", "china"]}, "quarter", "city"),
    ]
    refused = [
        ({}, "week", None),
        ({"q": "pensions"}, "year", None),
        ({"arrests_min": 1}, "year", None),
        ({"in_bbox": (1, 2, 3, 4)}, "year", None),
        # Several categories with more than four named: longer than the all-of subsets.
        (
            {
                "grievance": ["labor", "land", "welfare"],
                "police_response": ["force", "detained"],
                "city": [a.pk],
            },
            "year",
            None,
        ),
        ({"grievance": ["labor", "land", "welfare", "china", "covid"]}, "month", "city"),
        ({"grievance": ["labor"], "admin1": ["X"]}, "year", "police_response"),
        ({"grievance": ["labor", "no_such_slug"]}, "year", None),
        ({}, "year", "organizer"),
    ]
    for filters, interval, by in answered:
        assert rollup_counts(filters=filters, interval=interval, by=by) is not None, filters
    for filters, interval, by in refused:
        assert rollup_counts(filters=filters, interval=interval, by=by) is None, filters


def test_rollups_follow_every_kind_of_write(places, settings, tmp_path, django_user_model):
    a, b, c = places
    # Start: whatever the test database holds (demo data), then bulk and single inserts.
    Event.objects.bulk_create(
        [
            _make(a),
            _make(a, date=dt.date(2020, 5, 31), grievances=["labor", "welfare"]),
            _make(b, date=dt.date(2019, 3, 14), police_responses=["force"], arrests=None),
            _make(b, date=dt.date(2019, 3, 15), police_responses=[], participants_low=None),
            _make(c, date=dt.date(2021, 2, 10), grievances=["land"], arrests=0),
            _make(c, date=dt.date(2021, 2, 11), status=Event.Status.PENDING),
            _make(a, city=None, admin1="", grievances=["welfare"], police_responses=["lethal"]),
        ]
    )
    single = _make(b, date=dt.date(2020, 2, 14), grievances=["labor", "land"], deaths=2)
    single.save()
    assert check_all(places) >= 250

    # Edits that move an event to another city, month and grievance (ORM save and UPDATE).
    single.city, single.admin1 = c, c.admin1
    single.date = dt.date(2020, 6, 1)
    single.grievances = ["welfare"]
    single.save()
    Event.objects.filter(pk=single.pk).update(police_responses=["force", "detained"], arrests=9)
    Event.objects.filter(city=a, date=dt.date(2020, 5, 10)).update(date=dt.date(2019, 3, 20))
    check_all(places)

    # Status changes: publish, reject, unpublish; a save that changes nothing counted.
    Event.objects.filter(status=Event.Status.PENDING, city=c).update(status="published")
    rejected = Event.objects.filter(city=b, date=dt.date(2019, 3, 14)).get()
    rejected.status = Event.Status.REJECTED
    rejected.save()
    Event.objects.filter(pk=single.pk).update(status=Event.Status.PENDING)
    before = _snapshot()
    Event.objects.filter(city=c).update(title="Retitled")  # no counted column changes
    assert _snapshot() == before
    check_all(places)

    # Deletes (one, and several in one statement).
    Event.objects.filter(pk=rejected.pk).delete()
    Event.objects.filter(city=c, status="published", date__year=2021).delete()
    check_all(places)

    # A slug repeated in an array: a filter counts the event once, unnest twice. A mask
    # cannot tell, so by=grievance over the grievance sets goes to the raw query; filters
    # and by=police_response still come from the sets.
    by_slug = {"grievance": ["labor", "welfare"]}
    assert rollup_counts(filters=by_slug, interval="year", by="grievance") is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tracker_event SET grievances = '{labor,labor}' WHERE id = %s",
            [Event.objects.filter(city=b, status="published").first().pk],
        )
    assert rollup_counts(filters=by_slug, interval="year", by="grievance") is None
    assert rollup_counts(filters=by_slug, interval="year", by=None) is not None
    assert rollup_counts(filters=by_slug, interval="year", by="police_response") is not None
    assert rollup_counts(filters=by_slug, interval="year", by="country") is not None
    check_all(places)

    # A real import through the importer (COPY into tracker_event).
    from imports.services import import_job_create, import_job_run

    settings.MEDIA_ROOT = tmp_path
    moderator = django_user_model.objects.create_superuser("rollup-mod", "m@example.org", "pw")
    rows = [
        acled_row(event_id_cnty=f"ROLL{number}", event_date=f"2020-0{1 + number % 9}-1{number}")
        for number in range(10)
    ]
    rows.append(acled_row(event_id_cnty="ROLLX", notes="Police detained 12 people."))
    job = import_job_create(
        file=ContentFile(csv_bytes(rows), name="r.csv"),
        format="acled",
        publish=True,
        user=moderator,
        dispatch=False,
    )
    job = import_job_run(job_id=job.pk)
    assert job.rows_created == 11, job.status
    check_all(places)

    # A rolled-back transaction leaves the rollups as they were.
    before = _snapshot()
    with pytest.raises(RuntimeError), transaction.atomic():
        Event.objects.bulk_create([_make(a, date=dt.date(2020, 8, 1)) for _ in range(5)])
        Event.objects.filter(city=b).delete()
        assert _snapshot() != before
        raise RuntimeError("roll back")
    assert _snapshot() == before
    check_all(places)


def test_truncate_empties_the_rollups(places):
    Event.objects.bulk_create([_make(places[0])])
    assert any(_snapshot().values())
    with connection.cursor() as cursor:
        # Django's foreign keys are deferred: check them now, or TRUNCATE refuses to run.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE tracker_event CASCADE")
    assert not any(_snapshot().values())
    assert rollup_counts(filters={}, interval="year", by=None) == []


def test_allof_cells_match_the_migration():
    """The reader's all-of constants are the migration's, and its subsets function lists
    every non-empty subset of at most four bits with the sign (-1)^size."""
    migration = importlib.import_module("tracker.migrations.0017_allof_rollups")
    from tracker import rollups

    assert migration.MAX_TERMS == rollups.ALLOF_MAX_TERMS == 4
    assert migration.POLICE_SHIFT == rollups.ALLOF_POLICE_SHIFT == len(taxonomy.GRIEVANCE_SLUGS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT cmask, sign FROM tracker_allof_subsets(%s) ORDER BY 1", [0b10110])
        assert cursor.fetchall() == [
            (2, -1), (4, -1), (6, 1), (16, -1), (18, 1), (20, 1), (22, -1)
        ]  # fmt: skip
        cursor.execute(
            "SELECT count(*), max(bit_count(cmask::bit(32))) FROM tracker_allof_subsets(%s)",
            [(1 << 19) - 1],
        )
        assert cursor.fetchone() == (19 + 171 + 969 + 3876, 4)
