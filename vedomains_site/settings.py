"""Settings for vedomains, driven by the environment.

Django's own settings are here; the VEDOMAINS_* ones come from one module per subsystem in
vedomains_site/config/ (its __init__ gives the rules). Every value can be set by an
environment variable of the same name (or in a `.env` file next to `manage.py`);
`.env.example` and docs/settings.md document them all. Values the service cannot run without
or cannot parse fail here, at start-up, naming the variable; every other check of a value is
a system check (domains/system_checks.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from corsheaders.defaults import default_headers as _cors_default_headers
from django.core.exceptions import ImproperlyConfigured

from domains.task_names import TaskName
from vedomains_site.config import retired as _retired
from vedomains_site.config.environment import REDIS_PASSWORD, env
from vedomains_site.config.environment import redis_auth as _redis_auth
from vedomains_site.observability import logs as _logs

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

# `env` (vedomains_site/config/environment.py) has read .env already. A variable this version
# no longer reads stops start-up with its new name rather than being ignored.
if (_retired_reason := _retired.retired_problem(os.environ)) is not None:
    raise ImproperlyConfigured(_retired_reason)

# Test mode (insecure key allowed, the test broker) only when asked for explicitly: the test
# suite sets it (tests/testmode.py, loaded by pytest's addopts). Importing pytest, as a
# production process may do by accident, changes nothing.
TESTING = env.bool("VEDOMAINS_TEST_MODE", default=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it in the environment (or .env); "
            "DJANGO_DEBUG=true allows an insecure development key."
        )
    # Only for local runs and tests; production refuses to start without a real key.
    SECRET_KEY = "insecure-development-key-not-for-production"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = [o for o in env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[]) if o]

# --- Transport security: on whenever DEBUG is off (`check --deploy` is clean) ---
# Not switchable one by one: production is https. Behind a TLS-terminating load balancer
# set DJANGO_BEHIND_TLS_PROXY=true (below), or the https redirect would loop.
_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000 if _SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _SECURE
SECURE_HSTS_PRELOAD = _SECURE
# Tests talk plain http to the test client; everything else redirects to https.
SECURE_SSL_REDIRECT = _SECURE and not TESTING
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _SECURE

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "domains",
    "notifications",
    "edge",
    "workflow",
    "veai",
    "staff",
]
# Development tooling (localdev/: `manage.py local_dns` for the local DNS server) in local
# runs and tests only; production installs requirements.txt, which lacks its packages.
if DEBUG or TESTING:
    INSTALLED_APPS.append("localdev")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads request.GET/POST: over DATA_UPLOAD_MAX_NUMBER_FIELDS is a 400.
    "domains.middleware.RequestLimitsMiddleware",
    # Before anything queries the database with the request's values.
    "domains.middleware.RejectNulBytesMiddleware",
    # Before CommonMiddleware, so preflights and errors carry the CORS headers too.
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "vedomains_site.urls"
WSGI_APPLICATION = "vedomains_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite is the embedded default so a newcomer needs no database server; CI and production
# set DATABASE_URL (PostgreSQL).
# An empty DATABASE_URL (as in a copied .env.example) means the default too.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
    )
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process, the worker and beat share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not :memory:, so worker and web processes started by tests share it; one per
    # test process, so two test runs on one machine never share (or delete) each other's.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    if TESTING:
        # A fresh clone has no var/ yet, and SQLite cannot create the directory itself.
        VAR_DIR.mkdir(exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One 24-hour date format in the admin (vedomains_site/formats/en/formats.py).
FORMAT_MODULE_PATH = ["vedomains_site.formats"]

STATIC_URL = "static/"
STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default="") or str(VAR_DIR / "static")

EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="domains@ve.ai")
# SMTP, used when DJANGO_EMAIL_BACKEND is django.core.mail.backends.smtp.EmailBackend.
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
# A hung SMTP server must not hold a worker for ever (Django's default is no timeout).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"botocore": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The main app's bearer JWTs first; a "Token ..." header is left to DRF's.
        "api.authentication.MainAppJWTAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "domain_register_user": env.str("VEDOMAINS_THROTTLE_REGISTER_USER", default="30/hour"),
        "domain_register_workspace": env.str(
            "VEDOMAINS_THROTTLE_REGISTER_WORKSPACE", default="60/hour"
        ),
        "domain_verify_user": env.str("VEDOMAINS_THROTTLE_VERIFY_USER", default="20/minute"),
        "domain_verify_workspace": env.str(
            "VEDOMAINS_THROTTLE_VERIFY_WORKSPACE", default="60/minute"
        ),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "vedomains API",
    "DESCRIPTION": "Custom domains for ve.ai workspaces.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Serve Swagger UI and Redoc from our static files, not a CDN: /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Each path is answered with and without its final slash; the schema shows it once.
    "PREPROCESSING_HOOKS": ["api.schema_hooks.drop_alternate_spellings"],
    # The DNS doctor's codes under their own name, not a generic "CodeEnum".
    "ENUM_NAME_OVERRIDES": {"DiagnosisCodeEnum": "domains.dns_doctor.DiagnosisCode"},
}
# A CSRF refusal under /api/ is answered in the API's JSON error shape, not Django's page.
CSRF_FAILURE_VIEW = "api.views.csrf_failure"

# REDIS_PASSWORD, the ElastiCache AUTH token, is read in vedomains_site/config/environment.py:
# `_redis_auth` adds it to every redis:// URL below that names no password of its own.


# Throttle counters must be shared by every web process, so production uses Redis.
CACHES = {"default": environ.Env.cache_url_config(
    _redis_auth(env.str("CACHE_URL", default="locmemcache://vedomains")))}
if (not (DEBUG or TESTING)
        and CACHES["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"):
    # A per-process cache multiplies every throttle by the number of processes.
    raise ImproperlyConfigured(
        "CACHE_URL is a local-memory cache, which each process keeps for itself; set it to "
        "the shared Redis (redis://host:6379/1) or set DJANGO_DEBUG=true for development."
    )

# --- Celery ---------------------------------------------------------------------------------
if TESTING:
    # Each pytest-xdist worker gets its own Redis database (10 to 15; `./dev test` gives 0 to
    # a serial run and 1 to the e2e stack, and starts at most six workers), also on the
    # server VEDOMAINS_TEST_BROKER_URL names, so queued tasks never cross and one worker's
    # flush never empties another's.
    _xdist_worker = env.str("PYTEST_XDIST_WORKER", default="")
    _xdist = int("".join(c for c in _xdist_worker if c.isdigit()) or 0)
    CELERY_BROKER_URL = env.str(
        "VEDOMAINS_TEST_BROKER_URL", default=f"redis://127.0.0.1:6379/{10 + _xdist % 6}"
    )
    if _xdist_worker:
        _broker = urlsplit(CELERY_BROKER_URL)
        CELERY_BROKER_URL = urlunsplit(
            (_broker.scheme, _broker.netloc, f"/{10 + _xdist % 6}", _broker.query, ""))
else:
    CELERY_BROKER_URL = _redis_auth(
        env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0"))
if REDIS_PASSWORD:
    # Celery takes the CELERY_BROKER_URL environment variable over any configuration
    # (celery.app.utils.Settings.broker_url), which would drop the AUTH token added above;
    # the read and write URLs win over broker_url and are read from here only.
    CELERY_BROKER_READ_URL = CELERY_BROKER_WRITE_URL = CELERY_BROKER_URL
CELERY_RESULT_BACKEND = _redis_auth(env.str("CELERY_RESULT_BACKEND", default="")) or None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
# A worker killed mid-task must leave the message for another worker, not drop it.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every key the broker writes starts with this (kombu's global_keyprefix): `./dev run` gives
# each checkout its own, so two local stacks on one Redis never take each other's tasks.
CELERY_BROKER_KEY_PREFIX = env.str("CELERY_BROKER_KEY_PREFIX", default="")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": 3600,
    **({"global_keyprefix": CELERY_BROKER_KEY_PREFIX} if CELERY_BROKER_KEY_PREFIX else {}),
}
CELERY_TASK_IGNORE_RESULT = True
# Three queues, so a flood of checks never delays an edge push or a webhook: production runs
# a worker per queue (`celery -A vedomains_site worker -Q edge`); a worker started without
# -Q (development, tests) consumes all three. Anything not routed goes to `checks`.
CELERY_TASK_QUEUES: dict[str, dict[str, str]] = {"checks": {}, "edge": {}, "notifications": {}}
CELERY_TASK_DEFAULT_QUEUE = "checks"
CELERY_TASK_ROUTES = {
    TaskName.EDGE_SYNC_HOSTNAME.value: {"queue": "edge"},
    TaskName.EDGE_SYNC_PENDING.value: {"queue": "edge"},
    TaskName.EDGE_RECONCILE.value: {"queue": "edge"},
    TaskName.WEBHOOK_DELIVER.value: {"queue": "notifications"},
    TaskName.NOTIFICATION_SEND.value: {"queue": "notifications"},
    TaskName.NOTIFICATIONS_DISPATCH.value: {"queue": "notifications"},
}
CELERY_TIMEZONE = "UTC"

# --- VEDOMAINS_*: one module per subsystem (vedomains_site/config/, docs/settings.md) -------
from vedomains_site.config.aws import *
from vedomains_site.config.cdn import *
from vedomains_site.config.dns import *
from vedomains_site.config.domains import *
from vedomains_site.config.edge import *
from vedomains_site.config.limits import *
from vedomains_site.config.notifications import *
from vedomains_site.config.operations import *
from vedomains_site.config.scheduling import *
from vedomains_site.config.veai import *

# The rate limiter's buckets live on the broker unless a Redis of their own is named.
VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL = (VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL
                                      or CELERY_BROKER_URL)
# Logs: "" = JSON lines in production, plain text in development.
VEDOMAINS_LOG_FORMAT = VEDOMAINS_LOG_FORMAT or _logs.default_format(DEBUG)

# CORS for the ve.ai frontend (bearer tokens, no cookies) on the user API only.
CORS_ALLOWED_ORIGINS = [o for o in VEDOMAINS_CORS_ALLOWED_ORIGINS if o]
CORS_URLS_REGEX = r"^/api/(?!service/).*$"
CORS_ALLOW_CREDENTIALS = False
CORS_PREFLIGHT_MAX_AGE = 3600
# The frontend reads when to retry (429/503), where a new record lives (201) and the id to
# quote to support; it may send its own request id to tie its logs to ours.
CORS_EXPOSE_HEADERS = ["Retry-After", "Location", "X-Request-ID"]
CORS_ALLOW_HEADERS = [*_cors_default_headers, "x-request-id"]

# === Production operations: image, health, metrics, logs, errors =============================
# Everything the container image, the health and metrics endpoints, structured logs and Sentry
# need, in one block; see vedomains_site/observability/ and README.md, "Production".

INSTALLED_APPS += ["vedomains_site.observability"]
# Request id first (every later line carries it), then the health/metrics paths, answered
# before SecurityMiddleware and host validation (probes address the task by IP); whitenoise
# serves the collected static files (admin, API docs) from the image in production.
MIDDLEWARE = [
    "vedomains_site.observability.middleware.RequestIdMiddleware",
    "vedomains_site.observability.middleware.OperatorEndpointsMiddleware",
    MIDDLEWARE[0],
    *(["whitenoise.middleware.WhiteNoiseMiddleware"] if not DEBUG else []),
    *MIDDLEWARE[1:],
]

# (Replaces the LOGGING dict above.)
LOGGING = _logs.logging_config(level=env.str("LOG_LEVEL", default="INFO"),
                               fmt=VEDOMAINS_LOG_FORMAT)

# Database: the password may come on its own (ECS injects it from the RDS-managed secret),
# and a connection attempt gives up instead of hanging a request or a probe.
_db_password = env.str("DATABASE_PASSWORD", default="")
if _db_password:
    DATABASES["default"]["PASSWORD"] = _db_password
# A rotated password is read when a connection opens (vedomains_site/db/credentials.py), from
# Secrets Manager (production: the app user's secret, rotated under running tasks) or a file.
DATABASE_PASSWORD_SECRET_ARN = env.str("DATABASE_PASSWORD_SECRET_ARN", default="")
DATABASE_PASSWORD_FILE = env.str("DATABASE_PASSWORD_FILE", default="")
DATABASE_PASSWORD_CACHE_SECONDS = env.float("DATABASE_PASSWORD_CACHE_SECONDS", default=60.0)
# The app's own least-privilege user (JSON username/password), created by `bin/run migrate`
# (manage.py db_app_user) when set; only the migration task has it.
DATABASE_APP_USER_SECRET_ARN = env.str("DATABASE_APP_USER_SECRET_ARN", default="")
if (DATABASE_PASSWORD_SECRET_ARN or DATABASE_PASSWORD_FILE) and DATABASES["default"][
        "ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "vedomains_site.db.backend"
    DATABASES["default"].setdefault("OPTIONS", {})["password_source"] = {
        "secret_arn": DATABASE_PASSWORD_SECRET_ARN,
        # The secret's own region (arn:aws:secretsmanager:REGION:...).
        "region": (DATABASE_PASSWORD_SECRET_ARN.split(":") + [""] * 4)[3] or "us-east-1",
        "endpoint": VEDOMAINS_AWS_ENDPOINT_URL or None,
        "file": DATABASE_PASSWORD_FILE,
        "cache_seconds": DATABASE_PASSWORD_CACHE_SECONDS,
    }
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
if DATABASES["default"]["ENGINE"] in ("django.db.backends.postgresql",
                                      "vedomains_site.db.backend"):
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", DATABASE_CONNECT_TIMEOUT)

# Behind a TLS-terminating load balancer: trust its X-Forwarded-Proto (only the ALB can reach
# the tasks), and send session and CSRF cookies over HTTPS only.
DJANGO_BEHIND_TLS_PROXY = env.bool("DJANGO_BEHIND_TLS_PROXY", default=False)
if DJANGO_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    # The ALB redirects port 80 already; this covers any other way in. Health probes are
    # answered before SecurityMiddleware, so they are never redirected.
    SECURE_SSL_REDIRECT = True

# Celery (the queues are defined above): a broker that does not answer fails fast.
CELERY_BROKER_CONNECTION_TIMEOUT = 5.0
# Pool processes per worker container (`run worker QUEUE`); a --concurrency flag wins.
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=4)

# Sentry: nothing is initialised (and nothing sent) unless SENTRY_DSN is set.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="production")
SENTRY_RELEASE = env.str("SENTRY_RELEASE", default="")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    from vedomains_site.observability import sentry as _sentry

    _sentry.init(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, release=SENTRY_RELEASE,
                 traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE)
# === end of production operations =============================================================
