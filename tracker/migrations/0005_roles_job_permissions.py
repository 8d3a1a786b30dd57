from django.db import migrations


def forwards(apps, schema_editor):
    from tracker.roles import apply_roles

    apply_roles(apps)


class Migration(migrations.Migration):
    """Re-applies the role permissions: moderators now also see import and export jobs."""

    dependencies = [("tracker", "0004_arrests_sort_index")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
