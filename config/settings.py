"""One settings module: every difference between development, test and production is an
environment variable (or a line in .env, which `make` writes for the local set-up)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Without DEBUG the key must be strong, or nothing starts: a guessable key lets anyone forge
# sessions and password-reset links. "Weak" is Django's own W009 rule; the old default (and
# the placeholders once used by the compose file and the image build) are refused by name.
_DEV_SECRET_KEY = "insecure-dev-key-set-DJANGO_SECRET_KEY-in-production"  # noqa: S105 (refused without DEBUG)
_KNOWN_WEAK_KEYS = {_DEV_SECRET_KEY, "change-me", "build"}
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or (_DEV_SECRET_KEY if DEBUG else "")


def _weak_secret_key(key: str) -> bool:
    return (
        key in _KNOWN_WEAK_KEYS
        or len(key) < 50
        or len(set(key)) < 5
        or key.startswith("django-insecure-")
    )


if not DEBUG and _weak_secret_key(SECRET_KEY):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is missing, a known default or weak (it needs at least 50 "
        "characters, 5 of them different, and no 'django-insecure-' prefix), and DEBUG is "
        "off. Set a random one in the environment or in .env, e.g. the output of: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_gis",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "csp",
    "axes",
    "tracker",
    "imports",
    "api",
    "pages",
    "bench",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before sessions and auth: a database outage anywhere below answers 503, not 500.
    "config.middleware.ServiceUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes requires: it turns a lockout flagged by authenticate() into the
    # lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL",
        default="postgis://postgres@127.0.0.1:5432/tracker",
        engine="django.contrib.gis.db.backends.postgis",
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
DATABASES["default"]["TEST"] = {"NAME": env("DATABASE_TEST_NAME", default="test_tracker")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="tracker"),
        "TIMEOUT": 600,
        # Redis down = cache misses, not errors: pages and the API answer from PostgreSQL,
        # the API throttles let requests through (their counters read as empty), and
        # cached_db sessions fall back to their table. Short timeouts plus a circuit
        # breaker (tracker.cache) keep a request from waiting on a Redis that hangs.
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_CONNECT_TIMEOUT", default=0.5),
            "SOCKET_TIMEOUT": env.float("REDIS_TIMEOUT", default=1.0),
            "IGNORE_EXCEPTIONS": True,
            "CONNECTION_POOL_CLASS": "tracker.cache.CircuitBreakerPool",
            "CONNECTION_POOL_KWARGS": {
                "breaker_seconds": env.float("REDIS_BREAKER_SECONDS", default=5.0)
            },
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "tracker.cache.redis"
# Sessions are written to PostgreSQL and only cached in Redis: a Redis outage logs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): one policy for the page login, the admin login and the API
# token endpoint, since all three go through django.contrib.auth.authenticate(request=...).
# An account is locked after AXES_FAILURE_LIMIT failures from anywhere, and an address after
# as many failures for any accounts; both for AXES_COOLOFF_MINUTES. Attempts are kept in
# PostgreSQL (the database handler), so login keeps working and stays throttled when Redis
# is down.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "pages.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
# Who logged in from where is not kept (no AccessLog rows) and not logged: that record would
# tie a contributor to an address. Failed attempts are kept only until the cool-off ends.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address"]
# The client address as the API throttles see it (API_NUM_PROXIES): behind proxies, the one
# they appended to X-Forwarded-For; without, REMOTE_ADDR (the header is then forgeable).
AXES_CLIENT_IP_CALLABLE = "pages.lockout.client_address"

# Password reset mails: printed to the console in development; tests use Django's locmem
# outbox whatever this says.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="tracker@localhost")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ru", _("Russian")), ("kk", _("Kazakh"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="Asia/Almaty")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / ".run" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env(
            "STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".run" / "media")
MEDIA_URL = "/media/"
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Imports of at least this many rows are parsed in a second process while the first writes
# (imports.parallel); 0 = never. Off by default: on a loaded 2-core machine the
# pickling costs more than the second core gives (54 s in-process, 75 s parallel, 100k rows).
IMPORT_PARALLEL_MIN_ROWS = env.int("IMPORT_PARALLEL_MIN_ROWS", default=0)

# Content-Security-Policy: no inline script, no third-party origin. Map tiles may come from
# a tile server the operator names in MAP_TILE_URL (its origin is added to img-src).
MAP_TILE_URL = env("MAP_TILE_URL", default="")
_tile_origin = "/".join(MAP_TILE_URL.split("/")[:3]) if MAP_TILE_URL else None
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *([_tile_origin] if _tile_origin else [])],
        "connect-src": ["'self'", *([_tile_origin] if _tile_origin else [])],
        "worker-src": ["'self'", "blob:"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        # No page may be framed (clickjacking); see EMBED_ALLOWED_ORIGINS below.
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Origins whose pages may frame the embedded map, /embed/ (pages.views.embed_map), as
# "https://partner.example,https://*.news.example": its CSP then reads frame-ancestors
# 'self' and these, without X-Frame-Options. Empty (the default): /embed/ is refused to
# frames like every other page, which stay unframeable whatever this says. Each entry is
# scheme://host[:port] (a CSP host source), checked here: a stray ";" or space would
# otherwise write into the policy.
EMBED_ALLOWED_ORIGINS = [
    origin.strip().rstrip("/")
    for origin in env.list("DJANGO_EMBED_ALLOWED_ORIGINS", default=[])
    if origin.strip()
]
import re as _re  # noqa: E402  (here, beside the one setting that needs it)

for _origin in EMBED_ALLOWED_ORIGINS:
    if not _re.fullmatch(r"https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?", _origin):
        raise ImproperlyConfigured(
            f"DJANGO_EMBED_ALLOWED_ORIGINS: {_origin!r} is not an origin "
            "(scheme://host[:port], e.g. https://partner.example)."
        )

# HTTPS only whenever DEBUG is off: redirect, HSTS, Secure cookies. Two explicit switches:
# - DJANGO_BEHIND_TLS_PROXY=1: a reverse proxy terminates TLS and sends X-Forwarded-Proto
#   (it must set or strip that header on every request, or clients could spoof it);
# - DJANGO_INSECURE_LOCAL_HTTP=1: plain HTTP on 127.0.0.1 (`make run`, the test servers).
# /healthz answers over plain HTTP too, for health checks from inside the host or cluster.
INSECURE_LOCAL_HTTP = env.bool("DJANGO_INSECURE_LOCAL_HTTP", default=False)
_HTTPS_ONLY = not DEBUG and not INSECURE_LOCAL_HTTP
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _HTTPS_ONLY
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000) if _HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading is a promise to browsers that is slow to take back: the operator opts in.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = _HTTPS_ONLY or env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Celery: Redis as broker; results in Redis too so that a page can poll a job's progress.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
# Two queues, each with workers of its own (scripts/run.sh, docker-compose.yml): the light
# tasks (geocoding, sweeps, the heartbeat) on the default queue, imports and exports on the
# jobs queue, so that a long import never delays the geocoding of new submissions. A
# worker started without -Q takes both.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="tracker")
CELERY_JOBS_QUEUE = env("CELERY_JOBS_QUEUE", default=f"{CELERY_TASK_DEFAULT_QUEUE}.jobs")
# Each queue with a routing key of its own: with one key for both (kombu's default), a job
# published to the shared exchange would land in both queues and run twice.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in (CELERY_TASK_DEFAULT_QUEUE, CELERY_JOBS_QUEUE)
)
CELERY_TASK_ROUTES = {
    "imports.tasks.import_job_run": {"queue": CELERY_JOBS_QUEUE},
    "imports.tasks.export_job_run": {"queue": CELERY_JOBS_QUEUE},
}
# An import or export that runs longer is stopped (nothing of it is written) and reported
# as failed; it must stay below the visibility timeout (below), or Redis hands the running
# job to a second worker (imports.jobs.dispatch_job sends it with the task).
JOB_TIME_LIMIT_SECONDS = env.int("JOB_TIME_LIMIT_SECONDS", default=3000)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that queues a task must not hang on a broker that is down: a few quick tries,
# then tracker.dispatch.dispatch_on_commit logs it and a sweep dispatches it later.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
}
# With acks_late, Redis keeps a delivered task until it is acknowledged, and gives it to
# another worker once it has been unacknowledged for visibility_timeout: that is how a task
# whose whole worker died (machine lost, SIGKILL of the main process) comes back. Too short,
# and a long job still running is delivered twice (harmless: the job's run lock makes the
# second delivery a no-op, see imports.jobs); too long, and a lost task waits. The
# jobs sweep below re-queues such a job within minutes anyway. An hour is longer than any
# job we have measured (a million-row import takes about ten minutes), and it must stay
# above JOB_TIME_LIMIT_SECONDS plus a minute.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # Without these a publish to a Redis that hangs waits for ever (and the request with
    # it); the worker's BRPOP waits 1 s at a time, inside them.
    "socket_connect_timeout": 2,
    "socket_timeout": 2,
}
# A running job whose heartbeat is older than this (and whose run lock is free) has lost its
# worker; a queued job not picked up for JOB_QUEUED_STALE_SECONDS is dispatched again.
JOB_HEARTBEAT_STALE_SECONDS = env.int("JOB_HEARTBEAT_STALE_SECONDS", default=180)
JOB_QUEUED_STALE_SECONDS = env.int("JOB_QUEUED_STALE_SECONDS", default=300)
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "tracker.tasks.heartbeat", "schedule": 60.0},
    "jobs-sweep": {"task": "imports.tasks.jobs_sweep", "schedule": 60.0},
    "geocode-sweep": {"task": "tracker.tasks.geocode_sweep", "schedule": 300.0},
}

REST_FRAMEWORK = {
    # drf-spectacular plus the error responses every operation can give (api.schema).
    "DEFAULT_SCHEMA_CLASS": "api.schema.TrackerAutoSchema",
    # Token first: an anonymous write then gets 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["api.renderers.JSONRenderer"],
    # JSON with a size limit; multipart for file uploads (Django's parser enforces the
    # upload limits). No plain form parser: DRF's reads the body without any limit.
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.LimitedJSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.renderers.FormatNegotiation",
    # Counters live in the default cache (Redis), so every gunicorn worker shares them.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="600/minute"),
        "user": env("API_THROTTLE_USER", default="3000/minute"),
        "auth": env("API_THROTTLE_AUTH", default="10/minute"),
    },
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Protest event tracker API",
    "DESCRIPTION": (
        "Published protest events (JSON, GeoJSON, CSV) with filters, yearly and monthly "
        "trends, the taxonomy and the gazetteer; submissions and moderation for signed-in "
        "contributors and moderators. Send `Authorization: Token <key>` from scripts."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Events and import jobs both have a `status`: name each vocabulary explicitly.
    "ENUM_NAME_OVERRIDES": {
        "EventStatusEnum": "tracker.models.EventStatus",
        "ImportJobStatusEnum": "tracker.models.JobStatus",
        "EventRemovalKindEnum": "tracker.models.RemovalKind",
    },
    "TAGS": [
        {"name": "events", "description": "Events, submissions, review and history."},
        {"name": "stats", "description": "Aggregates for charts."},
        {"name": "reference", "description": "Taxonomy and gazetteer."},
        {"name": "auth", "description": "API tokens."},
    ],
}

# GDAL 3.6 (Debian 12) is older than the version Django 5.2 recommends; what this project
# uses of it works, so that one check is silenced by name.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
# W021 only says "preload is off", which is the deliberate default above.
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS.append("security.W021")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "filters": {
        "once_a_minute": {"()": "tracker.cache.ThrottledLogFilter", "interval": 60},
    },
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # one line a minute while Redis is down, not a traceback per cache call
        "tracker.cache.redis": {"filters": ["once_a_minute"]},
        "tracker.outage": {"filters": ["once_a_minute"]},
    },
}

# Only moderators see the history; it never shows who submitted an event (see models).
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
