"""Full-text search (`q=`): words by their start, in English, Russian and Kazakh, over the
event's text, its sources, its organizers, its city's names and its categories' labels.

Each expectation is plain SQL over the tables (regular expressions at word starts, the
city's id, the category slugs), not the search documents the code reads."""

import pytest
from django.db import connection

from tests.api.test_events_read import all_ids
from tracker.models import City, Event, Organization

pytestmark = pytest.mark.django_db

OWN_TEXT = "concat_ws(' ', e.title, e.description, e.location_detail, e.admin1)"


def matching(*patterns: str, city: City | None = None, responses=()) -> set[int]:
    """Published events in which every pattern (a regex of word starts, any case) is found
    in the event's text, a source's title or publisher or an organizer's name; or, per
    pattern, whose city is `city` or whose police responses meet `responses`."""
    conditions, params = [], []
    for pattern in patterns:
        one = (
            f"({OWN_TEXT} ~* %s"
            " OR EXISTS (SELECT 1 FROM tracker_source s WHERE s.event_id = e.id"
            "            AND concat_ws(' ', s.title, s.publisher) ~* %s)"
            " OR EXISTS (SELECT 1 FROM tracker_event_organizers eo JOIN tracker_organization o"
            "            ON o.id = eo.organization_id WHERE eo.event_id = e.id"
            "            AND concat_ws(' ', o.name, o.name_ru) ~* %s)"
        )
        params += [pattern] * 3
        if city is not None:
            one += " OR e.city_id = %s"
            params.append(city.pk)
        if responses:
            one += " OR e.police_responses && %s::varchar[]"
            params.append(list(responses))
        conditions.append(one + ")")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.id FROM tracker_event e WHERE e.status = 'published' AND "
            + " AND ".join(conditions),
            params,
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def almaty():
    return City.objects.get(name="Almaty")


def test_a_city_is_found_by_its_names_in_every_script(api, almaty):
    in_almaty = set(Event.objects.published().filter(city=almaty).values_list("id", flat=True))
    assert len(in_almaty) > 100
    latin = matching(r"\malmaty", city=almaty)
    assert all_ids(api, "q=Almaty") == latin
    assert all_ids(api, "q=алматы") == matching(r"\mалматы", city=almaty)
    # A former name, two parts: the city, or text with both parts.
    assert all_ids(api, "q=Alma-Ata") == matching(r"\malma", city=almaty) & matching(
        r"\mata", city=almaty
    )
    # A spelling the gazetteer does not list, by trigram similarity.
    assert in_almaty <= all_ids(api, "q=Almatyy")
    assert in_almaty <= latin


def test_partial_words_and_category_labels(api):
    kettled = {"kettled"}
    expected = matching(r"\mkettl", responses=kettled)
    assert expected  # the demo's kettlings
    assert all_ids(api, "q=kettl") == expected
    assert all_ids(api, "q=KETTLING") == matching(r"\mkettling", responses=kettled)
    # The Russian and Kazakh labels of the response ("Оцепление (кеттлинг)").
    assert all_ids(api, "q=кеттлинг") == matching(r"\mкеттлинг", responses=kettled)
    assert all_ids(api, "q=оцеплен") == matching(r"\mоцеплен", responses=kettled)


def test_every_word_must_be_found(api, almaty):
    both = matching(r"\malmaty", city=almaty) & matching(r"\mkettl", responses={"kettled"})
    assert all_ids(api, "q=Almaty kettl") == both
    assert all_ids(api, "q=kettl zzzunknownword") == set()


def _event(title, *, description="", sources=None, organizers=(), city="Aktobe"):
    from tracker.services.events import event_create

    event = event_create(
        fields={
            "title": title,
            "description": description,
            "date": "2021-03-01",
            "city": City.objects.get(name=city),
            "grievances": ["labor"],
        },
        sources=sources or [{"url": f"https://example.org/{abs(hash(title))}"}],
        status=Event.Status.PUBLISHED,
    )
    for name in organizers:
        event.organizers.add(Organization.objects.get_or_create(name=name)[0])
    return event


def test_sources_organizers_and_kazakh_words(api):
    by_source = _event(
        "Strike at the depot",
        sources=[{"url": "https://example.org/q1", "title": "Qyzylorda courier reports"}],
    )
    by_organizer = _event("Picket at the akimat", organizers=["Zharqyn Bolashaq"])
    kazakh = _event("Зейнетақы үшін наразылық", description="Жұмысшылар жиналды.")
    assert all_ids(api, "q=qyzylorda courier") == {by_source.pk}
    assert all_ids(api, "q=zharqyn") == {by_organizer.pk}
    assert all_ids(api, "q=наразы") == {kazakh.pk}  # a prefix, no stemmer for Kazakh
    assert all_ids(api, "q=зейнетақы") == {kazakh.pk}
    assert all_ids(api, "q=жұмысшы") == {kazakh.pk}


def test_russian_and_english_words_are_stemmed(api):
    event = _event("Рабочие бастуют", description="Workers demanded unpaid wages.")
    assert event.pk in all_ids(api, "q=бастует")  # бастуют / бастует: one stem
    assert event.pk in all_ids(api, "q=demanding")  # demanded / demanding
    assert event.pk in all_ids(api, "q=wage")


def test_ranked_by_the_event_text_title_first(api):
    in_title = _event("Quxbarium protest downtown")
    in_text = _event("Protest downtown", description="Called by the Quxbarium union.")
    response = api.get("/api/v1/events/?q=quxbarium&ordering=-search_rank")
    assert response.status_code == 200
    assert [e["id"] for e in response.json()["results"]] == [in_title.pk, in_text.pk]
    response = api.get("/api/v1/events/?q=quxbarium&ordering=search_rank")
    assert [e["id"] for e in response.json()["results"]] == [in_text.pk, in_title.pk]


def test_ranked_pages_follow_one_another(api):
    """Ranks page like dates: every event once (a rank read as a float4 repeated rows)."""
    ids = []
    url = "/api/v1/events/?q=Alma-Ata protest&ordering=-search_rank&page_size=50"
    while url:
        body = api.get(url).json()
        ids += [e["id"] for e in body["results"]]
        url = body["next"]
    assert len(ids) > 150
    assert len(ids) == len(set(ids))
    assert set(ids) == all_ids(api, "q=Alma-Ata protest")


@pytest.mark.parametrize("q", ["%", "%_", "...", "«»", "_"])
def test_a_query_without_words_is_a_clear_400(api, q):
    response = api.get("/api/v1/events/", {"q": q})
    assert response.status_code == 400
    assert "q needs a word to find" in response.json()["errors"]["q"][0]


def test_the_document_follows_sources_and_organizers(api):
    """Whoever writes (the ORM here, the admin, psql), triggers keep the event's text of
    its sources and organizers current (migration 0016)."""
    from tracker.models import Source

    event = _event("Meeting at the akimat")
    assert all_ids(api, "q=vortexgazette") == set()
    source = Source.objects.create(event=event, title="Vortexgazette reports", url="")
    assert all_ids(api, "q=vortexgazette") == {event.pk}
    source.title, source.publisher = "A report", "Quillpost"
    source.save()
    assert all_ids(api, "q=vortexgazette") == set()
    assert all_ids(api, "q=quillpost") == {event.pk}
    source.delete()
    assert all_ids(api, "q=quillpost") == set()

    group = Organization.objects.create(name="Zenvoryx Union")
    event.organizers.add(group)
    assert all_ids(api, "q=zenvoryx") == {event.pk}
    group.name = "Quorvane Union"
    group.save()
    assert all_ids(api, "q=zenvoryx") == set()
    assert all_ids(api, "q=quorvane") == {event.pk}
    event.organizers.remove(group)
    assert all_ids(api, "q=quorvane") == set()


def test_imported_events_are_found_by_their_sources_and_organizers(api, tmp_path):
    """An import writes the text itself (its triggers step aside), for new events and for
    events a newer row of the file updates."""
    from django.contrib.auth import get_user_model
    from django.core.files import File

    from imports.services import import_job_create, import_job_run

    admin = get_user_model().objects.create_superuser("search-admin", "s@example.org", "x")
    header = (
        "external_ids,title,date,country,city,grievances,organizers,source_urls,source_titles\n"
    )

    def run(rows: str) -> None:
        path = tmp_path / "events.csv"
        path.write_text(header + rows, encoding="utf-8")
        with path.open("rb") as fh:
            job = import_job_create(
                file=File(fh, name="events.csv"), format="native", publish=True, user=admin,
                dispatch=False,
            )  # fmt: skip
        job = import_job_run(job_id=job.pk)
        assert job.status == "succeeded", job.message
        return job

    row = "test:s1,Rally,2021-05-01,KZ,Aktobe,labor,Brivexa Guild,https://example.org/{},{}\n"
    job = run(row.format("r1", "Zulmora Times"))
    assert job.rows_created == 1
    found = all_ids(api, "q=zulmora")
    assert len(found) == 1
    assert all_ids(api, "q=brivexa") == found
    # A newer version of the row replaces its sources: the old title is no longer found.
    job = run(row.format("r2", "Quenlark Daily"))
    assert job.rows_updated == 1
    assert all_ids(api, "q=zulmora") == set()
    assert all_ids(api, "q=quenlark") == found == all_ids(api, "q=brivexa")
