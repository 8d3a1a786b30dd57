#!/usr/bin/env bash
# Everything `make run` and `make test` need, installed and started if missing:
# Debian packages, a local PostgreSQL + PostGIS and a Redis (unless DATABASE_URL / REDIS_URL
# point elsewhere), the virtualenv, the npm packages, the database, its migrations.
# Usage: scripts/setup.sh run|test
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-run}
ROOT=$(pwd)
mkdir -p .run

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

. scripts/dotenv.sh

# The URL that earlier versions of this script wrote for the local server, before it also
# wrote the SETUP_MANAGED_DATABASE mark (see the PostgreSQL section).
if [ "${DATABASE_URL:-}" = "postgis://tracker:tracker@127.0.0.1:5432/tracker" ]; then
  SETUP_MANAGED_DATABASE=1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo"
fi
can_root() { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

APT_UPDATED=""
apt_install() {
  [ $# -eq 0 ] && return 0
  can_root || die "missing system packages: $*. Install them (apt-get install $*) or run make as root/with sudo."
  command -v apt-get >/dev/null || die "missing system packages: $* (and no apt-get to install them)."
  say "installing Debian packages: $*"
  # apt and debconf chatter goes to a log; it is shown only when something fails.
  if [ -z "$APT_UPDATED" ]; then
    $SUDO apt-get update -qq >.run/apt.log 2>&1 || { cat .run/apt.log >&2; die "apt-get update failed."; }
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" \
    >>.run/apt.log 2>&1 || { tail -30 .run/apt.log >&2; die "could not install: $*."; }
}

# --- system packages ---------------------------------------------------------------------
pkgs=()
command -v python3 >/dev/null || pkgs+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || pkgs+=(python3-venv)
{ ldconfig -p 2>/dev/null | grep -q 'libgdal\.so'; } || pkgs+=(gdal-bin)
command -v ogrinfo >/dev/null || pkgs+=(gdal-bin)
command -v npm >/dev/null || pkgs+=(npm)
command -v pg_isready >/dev/null || pkgs+=(postgresql-client)
if [ -z "${REDIS_URL:-}" ] && ! tcp_open 127.0.0.1 6379 && ! command -v redis-server >/dev/null; then
  pkgs+=(redis-server)
fi
if { [ -z "${DATABASE_URL:-}" ] || [ "${SETUP_MANAGED_DATABASE:-}" = 1 ]; } \
   && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! tcp_open 127.0.0.1 5432; then
  pkgs+=(postgresql)
fi
if [ "$MODE" = test ] && [ ! -x /usr/bin/chromium ]; then pkgs+=(chromium); fi
# shellcheck disable=SC2207
pkgs=($(printf '%s\n' "${pkgs[@]}" | sort -u))
apt_install "${pkgs[@]}"

# PostGIS for the local server's major version.
if { [ -z "${DATABASE_URL:-}" ] || [ "${SETUP_MANAGED_DATABASE:-}" = 1 ]; } \
   && ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  for dir in /usr/lib/postgresql/*/; do
    version=$(basename "$dir")
    if [ ! -f "/usr/share/postgresql/$version/extension/postgis.control" ]; then
      apt_install "postgresql-$version-postgis-3"
    fi
  done
fi

# --- PostgreSQL ----------------------------------------------------------------------------
# A DATABASE_URL that this script wrote into .env (marked SETUP_MANAGED_DATABASE=1) is still
# the local server: after a reboot it must be started again, not taken as the user's own.
LOCAL_DB=""
if [ -z "${DATABASE_URL:-}" ] || [ "${SETUP_MANAGED_DATABASE:-}" = 1 ]; then LOCAL_DB=1; fi
if [ -n "$LOCAL_DB" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 -t 2; then
    version=$(ls /usr/lib/postgresql | sort -n | tail -1)
    say "starting PostgreSQL $version"
    can_root || die "PostgreSQL is not running on 127.0.0.1:5432 and I cannot start it without root: start it, or set DATABASE_URL."
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$version main$"; then
      $SUDO pg_createcluster "$version" main >/dev/null
    fi
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not start: see /var/log/postgresql/."
  fi
  if [ "${SETUP_MANAGED_DATABASE:-}" = 1 ]; then
    :  # the role and the URL were made by an earlier run
  elif PGCONNECT_TIMEOUT=5 psql -w -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    export DATABASE_URL="postgis://postgres@127.0.0.1:5432/tracker"
  else
    # A fresh Debian server asks for passwords on TCP: make a role of our own through the
    # local socket, as the postgres system user. It must be able to create the postgis
    # extension in test databases, so it is a superuser of this local, development server.
    can_root || die "cannot log in to PostgreSQL as postgres without a password: set DATABASE_URL."
    say "creating PostgreSQL role 'tracker' for local development"
    as_postgres=(runuser -u postgres --)
    [ "$(id -u)" -ne 0 ] && as_postgres=(sudo -n -u postgres)
    # From / : the postgres user may not enter this checkout's directory.
    (cd / && "${as_postgres[@]}" psql -qAt -d postgres -c \
      "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='tracker') THEN CREATE ROLE tracker LOGIN SUPERUSER PASSWORD 'tracker'; END IF; END \$\$;" >/dev/null)
    export DATABASE_URL="postgis://tracker:tracker@127.0.0.1:5432/tracker"
    if ! grep -q '^DATABASE_URL=' .env 2>/dev/null; then
      printf 'DATABASE_URL=%s\nSETUP_MANAGED_DATABASE=1\n' "$DATABASE_URL" >> .env
    fi
  fi
fi

# --- Redis -------------------------------------------------------------------------------
if [ -z "${REDIS_URL:-}" ] && ! tcp_open 127.0.0.1 6379; then
  # The append-only file in .run/ keeps the Celery queue (and tasks not yet acknowledged)
  # across a Redis restart; without it a restart dropped queued geocoding and import tasks.
  say "starting Redis on 127.0.0.1:6379 (queue persisted in .run/appendonly*)"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly yes \
    --appendfsync everysec --dir "$ROOT/.run" --logfile "$ROOT/.run/redis.log" \
    --pidfile "$ROOT/.run/redis.pid"
  for _ in $(seq 1 20); do tcp_open 127.0.0.1 6379 && break; sleep 0.5; done
  tcp_open 127.0.0.1 6379 || die "Redis did not start: see .run/redis.log."
fi

# The app refuses to start without DEBUG and a strong key: make one for this checkout, once.
# `make run` serves plain HTTP on 127.0.0.1, so the HTTPS-only defaults are switched off here,
# in .env, explicitly (a production environment sets neither; see the README).
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  say "writing a random DJANGO_SECRET_KEY into .env"
  DJANGO_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')
  echo "DJANGO_SECRET_KEY=$DJANGO_SECRET_KEY" >> .env
  export DJANGO_SECRET_KEY
fi
if [ -z "${DJANGO_INSECURE_LOCAL_HTTP:-}" ] && ! grep -q '^DJANGO_INSECURE_LOCAL_HTTP=' .env 2>/dev/null; then
  echo "DJANGO_INSECURE_LOCAL_HTTP=1" >> .env
  export DJANGO_INSECURE_LOCAL_HTTP=1
fi

# --- Python ------------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating the virtualenv in .venv"
  python3 -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  say "installing the project and its dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch .venv/.installed
fi

# --- JavaScript libraries (npm -> static/vendor) -----------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
scripts/vendor.sh

# --- database ----------------------------------------------------------------------------
.venv/bin/python manage.py preflight --create
.venv/bin/python manage.py migrate --noinput -v0
if [ "$MODE" = run ]; then
  .venv/bin/python manage.py collectstatic --noinput -v0
fi
