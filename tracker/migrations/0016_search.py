"""Full-text search: a search document on every event and source, and pg_trgm.

Each document is a stored generated column (PostgreSQL computes it on every INSERT, COPY and
UPDATE, whoever writes: the ORM, an import's INSERT ... SELECT, psql), with a GIN index:

- `russian` stems Cyrillic words with the Russian stemmer and Latin ones with the English
  one (PostgreSQL's `russian` configuration maps ASCII words to english_stem), so "kettling"
  and "kettled" meet as do "задержаны" and "задержание";
- `simple` keeps every word as written, lower-cased: Kazakh (which has no stemmer) and names.

An event's title weighs more than the rest of its text. The columns are not model fields:
`tracker.search` reads them, so no query writes them and no history table copies them.
pg_trgm matches place names by similarity (transliterations the gazetteer does not list).
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


def _document(weighted: str, rest: str) -> str:
    return (
        f"setweight(to_tsvector('russian'::regconfig, {weighted}), 'A') || "
        f"setweight(to_tsvector('simple'::regconfig, {weighted}), 'A') || "
        f"to_tsvector('russian'::regconfig, {rest}) || "
        f"to_tsvector('simple'::regconfig, {rest})"
    )


EVENT_REST = (
    "coalesce(description, '') || ' ' || coalesce(location_detail, '') || ' ' "
    "|| coalesce(admin1, '')"
)

FORWARD = f"""
ALTER TABLE tracker_event ADD COLUMN search tsvector
    GENERATED ALWAYS AS ({_document("coalesce(title, '')", EVENT_REST)}) STORED;
CREATE INDEX event_search_gin ON tracker_event USING gin (search);
ALTER TABLE tracker_source ADD COLUMN search tsvector
    GENERATED ALWAYS AS ({_document("coalesce(title, '')", "coalesce(publisher, '')")}) STORED;
CREATE INDEX source_search_gin ON tracker_source USING gin (search);
"""

BACKWARD = """
DROP INDEX IF EXISTS source_search_gin;
ALTER TABLE tracker_source DROP COLUMN IF EXISTS search;
DROP INDEX IF EXISTS event_search_gin;
ALTER TABLE tracker_event DROP COLUMN IF EXISTS search;
"""


class Migration(migrations.Migration):
    dependencies = [("tracker", "0015_import_rollups_once")]

    operations = [
        TrigramExtension(),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
