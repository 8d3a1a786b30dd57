"""Full-text search: one search document per event, with its sources and organizers.

`tracker_event.search` is a stored generated column (PostgreSQL computes it on every
INSERT, COPY and UPDATE, whoever writes) with a GIN index, of:

- the title (weight A), the description, place detail and region;
- `related_text` (weight C): the titles and publishers of the event's sources and the
  names of its organizers. Triggers keep it current whenever a source, an organizer link or
  an organization's name changes (statement triggers, a set-based UPDATE of the events
  touched). An import's transaction (`tracker.import_rollups` = 'deferred', migration
  0015) writes it with each new event itself and refreshes its updated events at the end.

Each text is read twice: by `russian` (Cyrillic words stemmed by the Russian stemmer, Latin
ones by the English one: PostgreSQL's `russian` configuration maps ASCII words to
english_stem), and by `simple` (every word as written, lower-cased: Kazakh, which has no
stemmer, and names). One document on the event's own row means one index and one cheap test
per row: a search for a common word can walk the date index and stop after a page, where a
match through the sources' table had to be collected first (7 s at a million events).

`related_text` and `search` are not model fields: no ORM save can write a stale copy over
what the triggers keep, and no history table copies them. pg_trgm matches place names by
similarity (transliterations the gazetteer does not list).
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

REST = (
    "coalesce(description, '') || ' ' || coalesce(location_detail, '') || ' ' "
    "|| coalesce(admin1, '')"
)
DOCUMENT = (
    "setweight(to_tsvector('russian'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, coalesce(title, '')), 'A') || "
    f"to_tsvector('russian'::regconfig, {REST}) || "
    f"to_tsvector('simple'::regconfig, {REST}) || "
    "setweight(to_tsvector('russian'::regconfig, related_text), 'C') || "
    "setweight(to_tsvector('simple'::regconfig, related_text), 'C')"
)

FORWARD = """
ALTER TABLE tracker_event ADD COLUMN related_text text NOT NULL DEFAULT '';

CREATE FUNCTION tracker_event_related_text(event bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT concat_ws(' ',
        (SELECT string_agg(concat_ws(' ', s.title, s.publisher), ' ' ORDER BY s.id)
           FROM tracker_source s WHERE s.event_id = event),
        (SELECT string_agg(concat_ws(' ', o.name, o.name_ru), ' ' ORDER BY o.id)
           FROM tracker_event_organizers eo
           JOIN tracker_organization o ON o.id = eo.organization_id
          WHERE eo.event_id = event))
$$;

CREATE FUNCTION tracker_refresh_related_text(events bigint[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE tracker_event e SET related_text = tracker_event_related_text(e.id)
     WHERE e.id = ANY(events)
       AND e.related_text IS DISTINCT FROM tracker_event_related_text(e.id)
$$;

-- Sources and organizer links: the events of the rows inserted, changed or deleted.
CREATE FUNCTION tracker_related_on_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('tracker.import_rollups', true) = 'deferred' THEN
        RETURN NULL;  -- the import writes the text itself
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM tracker_refresh_related_text(ARRAY(SELECT DISTINCT event_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM tracker_refresh_related_text(ARRAY(SELECT DISTINCT event_id FROM old_rows));
    ELSE
        PERFORM tracker_refresh_related_text(
            ARRAY(SELECT event_id FROM new_rows UNION SELECT event_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION tracker_related_on_organization() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tracker_refresh_related_text(ARRAY(
        SELECT DISTINCT eo.event_id FROM tracker_event_organizers eo
         WHERE eo.organization_id IN (SELECT id FROM new_rows)));
    RETURN NULL;
END $$;

CREATE TRIGGER tracker_source_related_insert AFTER INSERT ON tracker_source
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tracker_related_on_change();
CREATE TRIGGER tracker_source_related_update AFTER UPDATE ON tracker_source
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tracker_related_on_change();
CREATE TRIGGER tracker_source_related_delete AFTER DELETE ON tracker_source
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tracker_related_on_change();
CREATE TRIGGER tracker_organizers_related_insert AFTER INSERT ON tracker_event_organizers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tracker_related_on_change();
CREATE TRIGGER tracker_organizers_related_delete AFTER DELETE ON tracker_event_organizers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tracker_related_on_change();
CREATE TRIGGER tracker_organization_related_update AFTER UPDATE ON tracker_organization
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tracker_related_on_organization();

-- The events there are (before the document, so that the table is rewritten once more only).
UPDATE tracker_event e SET related_text = tracker_event_related_text(e.id)
 WHERE EXISTS (SELECT 1 FROM tracker_source s WHERE s.event_id = e.id)
    OR EXISTS (SELECT 1 FROM tracker_event_organizers eo WHERE eo.event_id = e.id);

ALTER TABLE tracker_event ADD COLUMN search tsvector GENERATED ALWAYS AS (@DOCUMENT@) STORED;
CREATE INDEX event_search_gin ON tracker_event USING gin (search);
""".replace("@DOCUMENT@", DOCUMENT)

BACKWARD = """
DROP TRIGGER IF EXISTS tracker_organization_related_update ON tracker_organization;
DROP TRIGGER IF EXISTS tracker_organizers_related_delete ON tracker_event_organizers;
DROP TRIGGER IF EXISTS tracker_organizers_related_insert ON tracker_event_organizers;
DROP TRIGGER IF EXISTS tracker_source_related_delete ON tracker_source;
DROP TRIGGER IF EXISTS tracker_source_related_update ON tracker_source;
DROP TRIGGER IF EXISTS tracker_source_related_insert ON tracker_source;
DROP FUNCTION IF EXISTS tracker_related_on_organization();
DROP FUNCTION IF EXISTS tracker_related_on_change();
DROP FUNCTION IF EXISTS tracker_refresh_related_text(bigint[]);
DROP FUNCTION IF EXISTS tracker_event_related_text(bigint);
DROP INDEX IF EXISTS event_search_gin;
ALTER TABLE tracker_event DROP COLUMN IF EXISTS search;
ALTER TABLE tracker_event DROP COLUMN IF EXISTS related_text;
"""


class Migration(migrations.Migration):
    dependencies = [("tracker", "0015_import_rollups_once")]

    operations = [
        TrigramExtension(),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
