"""The gazetteer is installed data: every database gets the cities of the five countries
(GeoNames, with curated Russian, Kazakh and former names) at `migrate`, so that an import
into a new instance finds its cities without a separate step. Idempotent, as
`manage.py loadgazetteer`, which refreshes it later."""

from django.db import migrations


def load(apps, schema_editor):
    from tracker.services.gazetteer import gazetteer_load

    gazetteer_load(
        city_model=apps.get_model("tracker", "City"),
        name_model=apps.get_model("tracker", "CityName"),
    )


class Migration(migrations.Migration):
    dependencies = [("tracker", "0012_date_precision_week")]

    # Backwards: the cities stay (events may point at them); nothing to undo.
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
