#!/usr/bin/env bash
# One archive with everything the tracker stores: the database (pg_dump custom format, with
# the history tables, accounts and who submitted what) and the media files (uploaded imports,
# exports). It identifies contributors: keep it encrypted and access-controlled (see README).
# Usage: scripts/backup.sh [ARCHIVE]   (default: backups/tracker-<UTC timestamp>.tar)
# Reads DATABASE_URL and MEDIA_ROOT from the environment or .env, like the app does.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077

die() { printf 'backup: %s\n' "$*" >&2; exit 1; }

. scripts/dotenv.sh
DATABASE_URL=${DATABASE_URL:-postgis://postgres@127.0.0.1:5432/tracker}
MEDIA_ROOT=${MEDIA_ROOT:-.run/media}
# libpq does not know Django's postgis:// scheme.
PG_URL="postgresql://${DATABASE_URL#*://}"

command -v pg_dump >/dev/null || die "pg_dump is missing (apt-get install postgresql-client)."
ARCHIVE=${1:-backups/tracker-$(date -u +%Y%m%dT%H%M%SZ).tar}
mkdir -p "$(dirname "$ARCHIVE")"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tracker-backup.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

pg_dump --format=custom --file="$WORK/database.dump" --dbname="$PG_URL" \
  || die "pg_dump failed (DATABASE_URL=${DATABASE_URL%%@*}@...)."
if [ -d "$MEDIA_ROOT" ]; then
  tar -czf "$WORK/media.tar.gz" -C "$MEDIA_ROOT" .
else
  tar -czf "$WORK/media.tar.gz" --files-from /dev/null
fi
printf 'created=%s\ndatabase=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${PG_URL##*/}" \
  > "$WORK/MANIFEST"
# Written next to the target and renamed: a full disk never leaves a half archive behind
# under the final name.
tar -cf "$ARCHIVE.partial" -C "$WORK" MANIFEST database.dump media.tar.gz
mv "$ARCHIVE.partial" "$ARCHIVE"
echo "backup: wrote $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)); it contains personal data: store it encrypted."
