"""VACUUM the event table after 0018 rewrote it (its new columns are stored).

A rewritten table has no visibility map, so until a VACUUM every index-only scan (the
covering indexes of 0010, the crowd indexes of 0018) reads the table too, and the planner
prefers to scan it whole; autovacuum does not count a rewrite as writes and may not come
for a long time. VACUUM cannot run in a transaction, hence a migration of its own that is
not atomic.
"""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("tracker", "0018_crowd_median_indexes")]

    operations = [migrations.RunSQL("VACUUM (ANALYZE) tracker_event", migrations.RunSQL.noop)]
