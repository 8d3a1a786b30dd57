"""`make backup` / `make restore` round trip: the real scripts, pg_dump and pg_restore against
PostgreSQL, into a database of a new name, compared table by table with the source."""

from __future__ import annotations

import datetime
import os
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, transaction

from tests.browser.support import _database_url, _psycopg_dsn
from tracker.models import Event, ExternalId, Source
from tracker.selectors import city_lookup
from tracker.services.events import event_create

ROOT = Path(__file__).resolve().parents[2]
# Tables whose rows must all come back (history included: it is the audit trail).
TABLES = [
    "tracker_event",
    "tracker_source",
    "tracker_externalid",
    "tracker_historicalevent",
    "tracker_historicalsource",
    "tracker_city",
    "auth_user",
    "auth_group",
]


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _drop(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _in_own_connection(function):
    """Run `function` in a thread of its own: Django gives it a connection of its own, in
    autocommit, outside the test's transaction (pg_dump sees committed rows only)."""

    def run():
        try:
            return function()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@transaction.atomic
def _submit():
    user = get_user_model().objects.create_user("backup-contributor", password="x-12345!")
    event = event_create(
        fields={
            "title": "Backup round trip",
            "date": datetime.date(2021, 5, 1),
            "country": "KZ",
            "grievances": ["welfare"],
            "city": city_lookup("Almaty", country="KZ").first(),
        },
        sources=[{"url": "https://example.org/backup", "title": "Backup"}],
        external_ids=["test:backup-roundtrip"],
        submitted_by=user,
    )
    return {
        "user": user.pk,
        "event": event.pk,
        "sources": list(event.sources.values_list("pk", flat=True)),
        "external_ids": list(event.external_ids.values_list("pk", flat=True)),
    }


@transaction.atomic
def _remove(ids):
    Event.objects.filter(pk=ids["event"]).delete()
    Event.history.filter(id=ids["event"]).delete()
    Source.history.filter(id__in=ids["sources"]).delete()
    ExternalId.history.filter(id__in=ids["external_ids"]).delete()
    get_user_model().objects.filter(pk=ids["user"]).delete()


@pytest.fixture
def committed_submission(db):
    """A contributor and their pending event, committed on top of the demo data; removed
    again afterwards, history included, so that later tests see the demo set alone."""
    ids = _in_own_connection(_submit)
    try:
        yield ids["event"]
    finally:
        _in_own_connection(lambda: _remove(ids))


def test_backup_restores_into_a_fresh_database(committed_submission, tmp_path):
    source_name = settings.DATABASES["default"]["NAME"]
    target_name = f"{source_name}_restored"
    admin_dsn = _psycopg_dsn(_database_url("postgres"))
    _drop(admin_dsn, target_name)

    media = tmp_path / "media"
    (media / "imports").mkdir(parents=True)
    upload = media / "imports" / "upload.csv"
    upload.write_bytes("date,title\n2021-05-01,Митинг\n".encode())
    archive = tmp_path / "out" / "backup.tar"
    env = {**os.environ, "DATABASE_URL": _database_url(source_name), "MEDIA_ROOT": str(media)}

    before = _counts(_psycopg_dsn(_database_url(source_name)))
    assert before["auth_user"] >= 1 and before["tracker_historicalevent"] > before["tracker_event"]

    result = subprocess.run(
        ["scripts/backup.sh", str(archive)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    # Personal data: readable by its owner only.
    assert archive.stat().st_mode & 0o077 == 0
    with tarfile.open(archive) as tar:
        assert set(tar.getnames()) == {"MANIFEST", "database.dump", "media.tar.gz"}

    restored_media = tmp_path / "restored-media"
    env.update(DATABASE_URL=_database_url(target_name), MEDIA_ROOT=str(restored_media))
    try:
        result = subprocess.run(
            ["scripts/restore.sh", str(archive)], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
        target_dsn = _psycopg_dsn(_database_url(target_name))
        assert _counts(target_dsn) == before
        with psycopg.connect(target_dsn, autocommit=True) as conn:
            # The restored event keeps its submitter link, geometry and version.
            row = conn.execute(
                "SELECT u.username, ST_AsText(e.location) IS NOT NULL, e.version "
                "FROM tracker_event e JOIN auth_user u ON u.id = e.submitted_by_id "
                "WHERE e.id = %s",
                (committed_submission,),
            ).fetchone()
            assert row == ("backup-contributor", True, 1)
            history = conn.execute(
                "SELECT count(*) FROM tracker_historicalevent WHERE id = %s",
                (committed_submission,),
            ).fetchone()[0]
            assert history == 1
        assert (restored_media / "imports" / "upload.csv").read_bytes() == upload.read_bytes()

        # A second restore into the now populated database is refused, not merged.
        again = subprocess.run(
            ["scripts/restore.sh", str(archive)], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert again.returncode != 0
        assert "restore into an empty or new database" in again.stderr
        assert _counts(target_dsn) == before
    finally:
        _drop(admin_dsn, target_name)
