"""Reasons written by imports before migration 0006 named the uploaded file; 0007 cuts it."""

import importlib

import pytest
from django.db import connection

from tracker.models import Event

migration = importlib.import_module("tracker.migrations.0007_history_reasons_without_file_names")


@pytest.mark.django_db
def test_old_import_reasons_lose_the_file_name():
    first, second = Event.objects.published()[:2]
    record, kept = first.history.first(), second.history.first()
    kept.history_change_reason = "review: publish"
    kept.save()
    record.history_change_reason = "import job 12 (acled: Ivanov-private-list.csv)"
    record.save()
    with connection.cursor() as cursor:
        for sql in migration.SQL:
            cursor.execute(sql)
    record.refresh_from_db()
    kept.refresh_from_db()
    assert record.history_change_reason == "import job 12 (acled)"
    assert kept.history_change_reason == "review: publish"
