# Two commands do everything on a fresh Debian/Ubuntu machine (as root or with sudo):
#   make run    install what is missing, start PostgreSQL+PostGIS and Redis if needed,
#               migrate, load the demo data, serve on http://127.0.0.1:8000/
#   make test   the same set-up, then ruff, the compose file check and the whole test suite
.PHONY: run test setup setup-test lint check-compose pytest demo benchmark clean

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

check-compose:
	@if command -v docker-compose >/dev/null 2>&1; then \
	  docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml: valid"; \
	else echo "docker-compose not installed: compose file not validated"; fi

pytest:
	.venv/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf .run static/vendor .pytest_cache .ruff_cache
