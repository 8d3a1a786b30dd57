"""Full-text search over events: `q=` of the API, the event list, the map and the dashboard.

A query is words; an event matches when every word is found, by its start ("kettl" finds
"kettled" and "kettling", "задерж" "задержаны"), in one of:

- its search document (migration 0016): its title, description, place detail and region,
  its sources' titles and publishers, its organizers' names; English and Russian words
  stemmed, every word also as written (Kazakh has no stemmer);
- its city, by any name the gazetteer knows (English, Russian, Kazakh, former names and
  variants: "Алматы", "Almaty" and "Alma-Ata" are one city), by the start of a name, or by
  trigram similarity for spellings it does not list ("Almatyy");
- the label of one of its grievances or police responses in any of the interface languages
  ("кеттлинг" finds the kettled events, "labo" the labor ones).

Each word becomes one OR of tests on the event's own row (the document, the city, the two
category arrays), each with an index: PostgreSQL either ORs their bitmaps, for a rare word,
or walks the date index testing each row, for a common one, and stops after a page. The
words are ANDed.

`search_rank` orders by relevance: ts_rank of the document (title words weigh most, then
the event's own text, then its sources and organizers).
"""

from __future__ import annotations

import re

from django.contrib.postgres.search import (
    SearchQuery,
    SearchRank,
    SearchVectorField,
    TrigramSimilarity,
)
from django.db.models import Expression, FloatField, Q, QuerySet, Value
from django.db.models.functions import Cast

from tracker import taxonomy
from tracker.models import CityName, Event, normalize_name

MAX_WORDS = 12
CONFIGS = ("russian", "simple")
# A city name is taken as meant when the word is this similar to one of its names (pg_trgm).
CITY_SIMILARITY = 0.6
MIN_PREFIX = 3  # shorter words match city names and labels only when whole
_TOKEN = re.compile(r"[^\W_]+")  # letters and digits (not the underscore)


class Document(Expression):
    """The event's stored search document, under whatever alias its table has in the
    statement (a subquery's U0, say)."""

    output_field = SearchVectorField()

    def as_sql(self, compiler, connection):
        alias = compiler.query.get_initial_alias()
        return f'{compiler.quote_name_unless_alias(alias)}."search"', []


def words(text: str) -> list[str]:
    """The query's words (at most MAX_WORDS), each a run of letters and digits; "Alma-Ata"
    is one word of two parts."""
    found = []
    for raw in text.split():
        parts = _TOKEN.findall(raw)
        if parts:
            found.append(" ".join(parts))
    return found[:MAX_WORDS]


def _tsquery(word: str) -> SearchQuery:
    """Every part of the word, as a prefix, in each configuration (any of them)."""
    raw = " & ".join(f"{part}:*" for part in word.split())
    query = None
    for config in CONFIGS:
        one = SearchQuery(raw, config=config, search_type="raw")
        query = one if query is None else query | one
    return query


def _cities(word: str) -> list[int]:
    key = normalize_name(word)
    if not key:
        return []
    condition = Q(normalized=key)
    if len(key) >= MIN_PREFIX:
        condition |= Q(normalized__startswith=key)
    names = CityName.objects.annotate(similarity=TrigramSimilarity("normalized", key))
    condition |= Q(similarity__gte=CITY_SIMILARITY)
    return sorted(set(names.filter(condition).values_list("city_id", flat=True)))


def _terms(word: str, terms: tuple[taxonomy.Term, ...]) -> list[str]:
    """Slugs of the terms one of whose labels (en, ru, kk) has a word starting with this one
    (or equal to it, for a short word)."""
    key = word.casefold().replace(" ", "")
    found = []
    for term in terms:
        labels = (term.slug, term.en, term.ru, term.kk)
        label_words = {w.casefold() for label in labels for w in _TOKEN.findall(label)}
        if any(w == key or (len(key) >= MIN_PREFIX and w.startswith(key)) for w in label_words):
            found.append(term.slug)
    return found


def word_condition(word: str) -> Q:
    """The events one word finds (see the module's docstring)."""
    condition = Q(search_document=_tsquery(word))
    cities = _cities(word)
    if cities:
        condition |= Q(city_id__in=cities)
    grievances = _terms(word, taxonomy.GRIEVANCES)
    if grievances:
        condition |= Q(grievances__overlap=grievances)
    responses = _terms(word, taxonomy.POLICE_RESPONSES)
    if responses:
        condition |= Q(police_responses__overlap=responses)
    return condition


def search(queryset: QuerySet[Event], text: str) -> QuerySet[Event]:
    """The events of `queryset` that every word of `text` finds."""
    found = words(text)
    if not found:
        return queryset
    queryset = queryset.alias(search_document=Document())
    for word in found:
        queryset = queryset.filter(word_condition(word))
    return queryset


def with_rank(queryset: QuerySet[Event], text: str) -> QuerySet[Event]:
    """`search_rank`: how well the event's search document matches all the words (its
    title above its description and place, its sources' and organizers' names below
    them); 0 when only its city or its categories do."""
    found = words(text)
    if not found:
        return queryset.annotate(search_rank=Value(0.0, output_field=FloatField()))
    query = None
    for word in found:
        one = _tsquery(word)
        query = one if query is None else query & one
    # As double precision: ts_rank's real, read into Python and written into a cursor,
    # would come back as a different number, and pages would repeat rows.
    return queryset.annotate(search_rank=Cast(SearchRank(Document(), query), FloatField()))
