#!/usr/bin/env bash
# Restore an archive of scripts/backup.sh into an empty or not yet existing database (created,
# with PostGIS) and unpack its media files into MEDIA_ROOT.
# Usage: scripts/restore.sh ARCHIVE
# Reads DATABASE_URL and MEDIA_ROOT from the environment or .env, like the app does.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'restore: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: scripts/restore.sh ARCHIVE"
ARCHIVE=$1
[ -f "$ARCHIVE" ] || die "no such archive: $ARCHIVE"
. scripts/dotenv.sh
DATABASE_URL=${DATABASE_URL:-postgis://postgres@127.0.0.1:5432/tracker}
MEDIA_ROOT=${MEDIA_ROOT:-.run/media}
PG_URL="postgresql://${DATABASE_URL#*://}"
for tool in pg_restore psql; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install postgresql-client)."
done

# The database name, and the same server's maintenance database to create it from.
read -r DB_NAME ADMIN_URL < <(python3 - "$PG_URL" <<'PY'
import sys
from urllib.parse import unquote, urlsplit, urlunsplit

url = urlsplit(sys.argv[1])
print(unquote(url.path.lstrip("/")), urlunsplit(url._replace(path="/postgres")))
PY
)
[ -n "$DB_NAME" ] || die "DATABASE_URL names no database."

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tracker-restore.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
tar -xf "$ARCHIVE" -C "$WORK" database.dump media.tar.gz \
  || die "$ARCHIVE is not an archive of scripts/backup.sh."

quoted=$(printf '%s' "$DB_NAME" | sed 's/"/""/g')
exists=$(psql -X -w -At -d "$ADMIN_URL" -v ON_ERROR_STOP=1 \
  -c "SELECT 1 FROM pg_database WHERE datname = '$(printf '%s' "$DB_NAME" | sed "s/'/''/g")'")
if [ -z "$exists" ]; then
  echo "restore: creating database $DB_NAME"
  psql -X -w -q -d "$ADMIN_URL" -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$quoted\""
else
  # Restoring over live data would mix two states; only an empty database is accepted.
  tables=$(psql -X -w -At -d "$PG_URL" -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pg_tables
    WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'topology', 'tiger')
      AND tablename <> 'spatial_ref_sys'")
  [ "$tables" = 0 ] || die "database $DB_NAME already has $tables tables: restore into an empty or new database (drop it first, or set DATABASE_URL to another name)."
fi
psql -X -w -q -d "$PG_URL" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS postgis"
# One transaction: a failed restore leaves the database as empty as it was.
pg_restore --no-owner --no-privileges --no-comments --exit-on-error --single-transaction \
  --dbname="$PG_URL" "$WORK/database.dump" || die "pg_restore failed; the database was left empty."

mkdir -p "$MEDIA_ROOT"
tar -xzf "$WORK/media.tar.gz" -C "$MEDIA_ROOT"
echo "restore: database $DB_NAME and media files in $MEDIA_ROOT restored from $ARCHIVE"
