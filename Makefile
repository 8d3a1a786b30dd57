# Two commands do everything on a fresh Debian/Ubuntu machine (as root or with sudo):
#   make run    install what is missing, start PostgreSQL+PostGIS and Redis if needed,
#               migrate, load the demo data, serve on http://127.0.0.1:8000/
#   make test   the same set-up, then ruff, the compose file check and the whole test suite
#   make backup / make restore FILE=...   database and media files (see the README)
.PHONY: run test setup setup-test lint check-compose pytest demo benchmark clean backup restore

PY := .venv/bin/python
PORT ?= 8000
export PORT

run: setup demo
	scripts/run.sh

test: setup-test lint check-compose pytest

setup:
	scripts/setup.sh run

setup-test:
	scripts/setup.sh test

demo:
	$(PY) manage.py loaddemo --users

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# The compose file demands a DJANGO_SECRET_KEY; validation gets a placeholder of its own.
COMPOSE_CHECK_ENV := DJANGO_SECRET_KEY=compose-config-validation-only-not-a-real-key-0123456789
check-compose:
	@if docker compose version >/dev/null 2>&1; then \
	  $(COMPOSE_CHECK_ENV) docker compose -f docker-compose.yml config -q && echo "docker-compose.yml: valid"; \
	elif command -v docker-compose >/dev/null 2>&1; then \
	  $(COMPOSE_CHECK_ENV) docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml: valid"; \
	else echo "docker-compose not installed: compose file not validated"; fi

# make backup [FILE=path.tar]: database (pg_dump -Fc) and media files in one archive.
# make restore FILE=path.tar [DATABASE_URL=...]: into an empty or new database.
backup:
	scripts/backup.sh $(FILE)

restore:
	@test -n "$(FILE)" || { echo "usage: make restore FILE=backups/<archive>.tar" >&2; exit 2; }
	scripts/restore.sh $(FILE)

pytest:
	.venv/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf .run static/vendor .pytest_cache .ruff_cache
