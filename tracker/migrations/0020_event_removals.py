"""The events that left the public record, for the sync feed /api/v1/events/removed/.

A script that syncs with `/api/v1/events/?updated_since=` never hears of an event that
stopped being published: it is simply no longer in the list. `tracker_eventremoval` keeps
one row per departure, written by two row-level triggers on tracker_event, so that every
path counts (the services, the admin, a queryset .update() or bulk_update, an import,
psql):

- UPDATE OF status (a statement that does not set the status never gets here), only
  `WHEN (OLD.status = 'published' AND NEW.status IS DISTINCT FROM 'published')`: kind
  `rejected`, `archived`, `merged` (a status that does not exist yet), or `withdrawn` (back
  to pending or draft);
- DELETE, only `WHEN (OLD.status = 'published')`: kind `deleted`.

The WHEN clause is tested by PostgreSQL on the old and new row before any function is
called, so an update that leaves the status alone (a bulk edit of titles, the rollups'
and search document's refreshes) costs a comparison per row. An event that was never
published leaves no row when it is rejected or deleted. `removed_at` is the column's
default, now(): the time the removing transaction started, which commits later (the feed's
readers ask with some overlap, see the README). `merged_into` stays null: the migration
that brings merging replaces tracker_event_removal_on_update() to fill it from the row.

TRUNCATE fires no row triggers (only tests and the demo reset truncate the events).
The rollups' statement triggers of 0008, 0011 and 0017 on the same table are untouched.
"""

from django.db import migrations, models

FORWARD = """
CREATE FUNCTION tracker_event_removal_on_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tracker_eventremoval (event_id, kind)
    VALUES (OLD.id, CASE NEW.status WHEN 'rejected' THEN 'rejected'
                                    WHEN 'archived' THEN 'archived'
                                    WHEN 'merged' THEN 'merged'
                                    ELSE 'withdrawn' END);
    RETURN NULL;
END $$;

CREATE FUNCTION tracker_event_removal_on_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tracker_eventremoval (event_id, kind) VALUES (OLD.id, 'deleted');
    RETURN NULL;
END $$;

CREATE TRIGGER tracker_event_removal_update AFTER UPDATE OF status ON tracker_event
    FOR EACH ROW
    WHEN (OLD.status = 'published' AND NEW.status IS DISTINCT FROM 'published')
    EXECUTE FUNCTION tracker_event_removal_on_update();
CREATE TRIGGER tracker_event_removal_delete AFTER DELETE ON tracker_event
    FOR EACH ROW
    WHEN (OLD.status = 'published')
    EXECUTE FUNCTION tracker_event_removal_on_delete();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS tracker_event_removal_delete ON tracker_event;
DROP TRIGGER IF EXISTS tracker_event_removal_update ON tracker_event;
DROP FUNCTION IF EXISTS tracker_event_removal_on_delete();
DROP FUNCTION IF EXISTS tracker_event_removal_on_update();
"""


class Migration(migrations.Migration):
    dependencies = [("tracker", "0019_vacuum_events")]

    operations = [
        migrations.CreateModel(
            name="EventRemoval",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("event_id", models.BigIntegerField(verbose_name="event id")),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("withdrawn", "withdrawn"),
                            ("rejected", "rejected"),
                            ("archived", "archived"),
                            ("deleted", "deleted"),
                            ("merged", "merged"),
                        ],
                        max_length=10,
                        verbose_name="kind",
                    ),
                ),
                (
                    "removed_at",
                    models.DateTimeField(
                        db_default=models.Func(
                            template="now()", output_field=models.DateTimeField()
                        ),
                        verbose_name="removed at",
                    ),
                ),
                (
                    "merged_into",
                    models.BigIntegerField(blank=True, null=True, verbose_name="merged into"),
                ),
            ],
            options={
                "verbose_name": "event removal",
                "verbose_name_plural": "event removals",
                "ordering": ["removed_at", "id"],
                "indexes": [
                    models.Index(fields=["removed_at", "id"], name="eventremoval_time_idx")
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("kind__in", ["withdrawn", "rejected", "archived", "deleted", "merged"])
                        ),
                        name="eventremoval_kind_valid",
                    )
                ],
            },
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
