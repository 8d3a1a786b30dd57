# One image for web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim-bookworm
# postgresql-client: pg_dump/pg_restore for scripts/backup.sh and restore.sh (15, as the db).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gdal-bin npm postgresql-client \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY pyproject.toml README.md ./
COPY tracker/__init__.py tracker/__init__.py
COPY config/__init__.py config/__init__.py
COPY imports/__init__.py imports/__init__.py
COPY pages/__init__.py pages/__init__.py
COPY bench/__init__.py bench/__init__.py
COPY api/__init__.py api/__init__.py
RUN pip install --no-cache-dir -e .
COPY . .
# collectstatic imports the settings, which refuse a weak key without DEBUG: a random key that
# lives for this one command (the running container gets its own from the environment).
RUN scripts/vendor.sh \
 && DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    python manage.py collectstatic --noinput -v0
EXPOSE 8000
# Threads and a long timeout: a streamed CSV export of a million rows takes minutes.
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--worker-class", "gthread", "--threads", "4", "--timeout", "300"]
