"""History rows written by imports before 0006 named the uploaded file in their change reason
("import job 12 (acled: kazakhstan-2020.csv)"), and the public event page shows the reason.
A file name can say who prepared the file, so it is cut from the stored reasons."""

from django.db import migrations

TABLES = (
    "tracker_historicalevent",
    "tracker_historicalsource",
    "tracker_historicalexternalid",
    "tracker_historicalorganization",
)
# The reason was cut at 200 characters, so the closing parenthesis may be missing.
PATTERN = r"^(import job [0-9]+ \([a-z]+): .*$"

SQL = [
    f"UPDATE {table} SET history_change_reason = regexp_replace("  # noqa: S608
    f"history_change_reason, '{PATTERN}', '\\1)') "
    f"WHERE history_change_reason ~ '{PATTERN}'"
    for table in TABLES
]


class Migration(migrations.Migration):
    dependencies = [("tracker", "0006_integrity_versions_jobs")]

    operations = [migrations.RunSQL(sql, migrations.RunSQL.noop) for sql in SQL]
