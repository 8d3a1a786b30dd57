"""Check (and with --create, prepare) what the app needs, saying in one line what is wrong.

`make run` and `make test` call this before migrating, so that a wrong DATABASE_URL, a
missing PostGIS or a stopped Redis ends with a sentence, not a traceback.
"""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql


def _conninfo(db: dict, dbname: str) -> dict:
    return {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "dbname": dbname,
        "connect_timeout": 5,
    }


def _where(db: dict) -> str:
    user = db.get("USER") or "(default user)"
    return f"{user}@{db.get('HOST') or 'socket'}:{db.get('PORT') or 5432}"


class Command(BaseCommand):
    help = "Check the database, PostGIS and Redis; --create makes the database and extension."

    def add_arguments(self, parser):
        parser.add_argument("--create", action="store_true", help="create what is missing")

    def handle(self, *args, **options):
        db = settings.DATABASES["default"]
        names = [db["NAME"]]
        if options["create"]:
            self._create_database(db, db["NAME"])
        self._check_postgis(db, names[0], create=options["create"])
        self._check_redis()
        self.stdout.write(f"preflight: PostgreSQL {db['NAME']} on {_where(db)}, PostGIS, Redis ok")

    def _connect(self, db: dict, dbname: str):
        try:
            return psycopg.connect(**_conninfo(db, dbname), autocommit=True)
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no answer"
            raise CommandError(
                f"Cannot connect to PostgreSQL database {dbname!r} at {_where(db)}: {reason}. "
                "Start PostgreSQL or set DATABASE_URL (e.g. "
                "postgis://user:password@host:5432/tracker) in the environment or .env."
            ) from None

    def _create_database(self, db: dict, name: str) -> None:
        with self._connect(db, "postgres") as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except psycopg.Error as exc:
                    raise CommandError(
                        f"Cannot create database {name!r} as {db.get('USER')}: "
                        f"{exc.diag.message_primary}. Create it, or give the role CREATEDB."
                    ) from None
                self.stdout.write(f"preflight: created database {name}")

    def _check_postgis(self, db: dict, name: str, *, create: bool) -> None:
        with self._connect(db, name) as conn:
            available = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
            ).fetchone()
            if not available:
                raise CommandError(
                    "PostGIS is not installed on the PostgreSQL server at "
                    f"{_where(db)}. On Debian/Ubuntu: apt-get install postgresql-15-postgis-3 "
                    "(match your PostgreSQL version)."
                )
            installed = conn.execute(
                "SELECT 1 FROM pg_extension WHERE extname = 'postgis'"
            ).fetchone()
            if not installed and create:
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                except psycopg.Error as exc:
                    raise CommandError(
                        f"Cannot create the postgis extension in {name!r}: "
                        f"{exc.diag.message_primary}. A superuser must run "
                        f"'CREATE EXTENSION postgis' in {name} (and in template1 for tests)."
                    ) from None
            elif not installed:
                raise CommandError(
                    f"The postgis extension is missing in database {name!r}: run "
                    "`python manage.py preflight --create` or CREATE EXTENSION postgis."
                )

    def _check_redis(self) -> None:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            raise CommandError(
                f"Cannot reach Redis at {settings.REDIS_URL}: {exc}. Start redis-server or set "
                "REDIS_URL."
            ) from None
