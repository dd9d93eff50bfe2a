"""Settings for vedomains: one module, driven by the environment.

Every value can be set by an environment variable of the same name (or in a `.env` file next
to `manage.py`); `.env.example` documents them all. Values the service cannot run without
fail here, at start-up, with a message that names the variable.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import environ
from corsheaders.defaults import default_headers as _cors_default_headers
from django.core.exceptions import ImproperlyConfigured

from domains.task_names import TaskName
from vedomains_site.observability import logs as _logs

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

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
        "domains.api.authentication.MainAppJWTAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "domains.api.errors.exception_handler",
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
    "PREPROCESSING_HOOKS": ["domains.api.schema_hooks.drop_alternate_spellings"],
    # The DNS doctor's codes under their own name, not a generic "CodeEnum".
    "ENUM_NAME_OVERRIDES": {"DiagnosisCodeEnum": "domains.dns_doctor.DiagnosisCode"},
}
# A CSRF refusal under /api/ is answered in the API's JSON error shape, not Django's page.
CSRF_FAILURE_VIEW = "domains.api.views.csrf_failure"

# ElastiCache AUTH token (deploy/control-plane.yaml injects it from Secrets Manager). It is
# added to every redis:// or rediss:// URL below that names no password of its own, so the
# URLs themselves stay free of secrets.
REDIS_PASSWORD = env.str("REDIS_PASSWORD", default="")


def _redis_auth(url: str) -> str:
    parts = urlsplit(url)
    if (not REDIS_PASSWORD or parts.password
            or parts.scheme not in ("redis", "rediss", "rediscache")):
        return url
    netloc = f"{parts.username or ''}:{quote(REDIS_PASSWORD, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


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
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
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

# --- Domains --------------------------------------------------------------------------------
# The name customers point their CNAME at, and the platform's own zones, which are never
# accepted as custom domains.
VEDOMAINS_CNAME_TARGET = env.str("VEDOMAINS_CNAME_TARGET", default="domain.ve.ai").lower()
VEDOMAINS_PLATFORM_DOMAIN = env.str("VEDOMAINS_PLATFORM_DOMAIN", default="ve.ai").lower()
VEDOMAINS_RESERVED_DOMAINS = env.list("VEDOMAINS_RESERVED_DOMAINS", default=[])
# Apex names cannot carry a CNAME and the check follows a CNAME, so an apex domain accepted
# here would sit pending until it failed. The setting that allowed it is refused by name so
# that a deployment still setting it learns why at start-up, not from customers.
if "VEDOMAINS_ALLOW_APEX" in os.environ:
    raise ImproperlyConfigured(
        "VEDOMAINS_ALLOW_APEX is no longer supported: apex domains cannot be verified through "
        "a CNAME. Remove it; customers use a subdomain such as www.<domain>."
    )
# "always": every domain proves ownership with a TXT record; "previously-held": only
# hostnames another workspace has held before, in any status, unless it released them
# explicitly (takeover protection).
VEDOMAINS_OWNERSHIP_TXT = env.str("VEDOMAINS_OWNERSHIP_TXT", default="previously-held")
if VEDOMAINS_OWNERSHIP_TXT not in {"always", "previously-held"}:
    raise ImproperlyConfigured("VEDOMAINS_OWNERSHIP_TXT must be 'always' or 'previously-held'")
VEDOMAINS_OWNERSHIP_TXT_PREFIX = "_vedomains-challenge"

_default_limits = {"free": 0, "pro": 3, "business": 25, "enterprise": 1000}
try:
    VEDOMAINS_PLAN_LIMITS: dict[str, int] = {
        **_default_limits,
        **json.loads(env.str("VEDOMAINS_PLAN_LIMITS", default="{}")),
    }
except json.JSONDecodeError as exc:
    raise ImproperlyConfigured(f"VEDOMAINS_PLAN_LIMITS is not valid JSON: {exc}") from exc

# DNS: "host:port" entries; empty means the system resolver.
VEDOMAINS_DNS_NAMESERVERS = env.list("VEDOMAINS_DNS_NAMESERVERS", default=[])
VEDOMAINS_DNS_TIMEOUT = env.float("VEDOMAINS_DNS_TIMEOUT", default=3.0)
VEDOMAINS_DNS_CONCURRENCY = env.int("VEDOMAINS_DNS_CONCURRENCY", default=100)

# AWS. ACM certificates for CloudFront must live in us-east-1.
# https://docs.aws.amazon.com/acm/latest/userguide/acm-regions.html
VEDOMAINS_AWS_ENDPOINT_URL = env.str("VEDOMAINS_AWS_ENDPOINT_URL", default="") or None
VEDOMAINS_AWS_REGION = env.str("VEDOMAINS_AWS_REGION", default="us-east-1")
VEDOMAINS_AWS_CONNECT_TIMEOUT = env.float("VEDOMAINS_AWS_CONNECT_TIMEOUT", default=3.0)
VEDOMAINS_AWS_READ_TIMEOUT = env.float("VEDOMAINS_AWS_READ_TIMEOUT", default=10.0)
# Calls a second per "service.Operation" (or "service.*" for one bucket shared by the
# service's other operations), for the whole fleet: AWS throttles per account. The defaults
# are 80 % of ACM's documented rates (the rest is left to other tools in the account);
# CloudFront publishes no per-operation rates. DynamoDB (on-demand) is not limited.
try:
    VEDOMAINS_AWS_RATE_LIMITS: dict[str, float] = env.json(
        "VEDOMAINS_AWS_RATE_LIMITS",
        default={
            "acm.RequestCertificate": 4,
            "acm.DescribeCertificate": 8,
            "acm.DeleteCertificate": 8,
            "acm.ListCertificates": 6,
            "cloudfront.*": 8,
        },
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"VEDOMAINS_AWS_RATE_LIMITS is not valid JSON: {exc}") from exc
# Checked here: a bad rate would otherwise surface inside every AWS call (the limiter runs
# in botocore's before-send hook), and a negative one would make the limiter sleep < 0.
if not isinstance(VEDOMAINS_AWS_RATE_LIMITS, dict) or not all(
    isinstance(name, str) and "." in name
    and isinstance(rate, int | float) and not isinstance(rate, bool) and rate >= 0
    for name, rate in VEDOMAINS_AWS_RATE_LIMITS.items()
):
    raise ImproperlyConfigured(
        'VEDOMAINS_AWS_RATE_LIMITS must be a JSON object of "service.Operation" (or '
        '"service.*") to calls a second, each a number >= 0'
    )
# How long a call waits for a token before it is retried later as a transient error.
VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT = env.float("VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT", default=5.0)
VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL = _redis_auth(env.str(
    "VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL", default=""
)) or CELERY_BROKER_URL
VEDOMAINS_EDGE_TABLE = env.str("VEDOMAINS_EDGE_TABLE", default="domain-workspace-mappings")
# Empty: a replica in every region with a CloudFront regional edge cache, the list
# edge_lambda.config.REGIONAL_EDGE_CACHE_REGIONS holds and deploy/dynamodb-global-table.yaml
# defaults to (a test keeps the two equal). Set it only with the template's replicas.
VEDOMAINS_EDGE_REPLICA_REGIONS = env.list("VEDOMAINS_EDGE_REPLICA_REGIONS", default=[])
VEDOMAINS_EDGE_ORIGIN_DOMAIN = env.str("VEDOMAINS_EDGE_ORIGIN_DOMAIN", default="origin.ve.ai")
VEDOMAINS_EDGE_REWRITE_ORIGIN = env.bool("VEDOMAINS_EDGE_REWRITE_ORIGIN", default=False)
# Send the viewer's Host to the origin (only for an origin holding every custom domain's
# certificate); by default it gets its own name as Host and the viewer's in X-Forwarded-Host.
VEDOMAINS_EDGE_FORWARD_VIEWER_HOST = env.bool("VEDOMAINS_EDGE_FORWARD_VIEWER_HOST", default=False)
VEDOMAINS_EDGE_MODE = env.str("VEDOMAINS_EDGE_MODE", default="origin-request")
VEDOMAINS_EDGE_POSITIVE_TTL = env.int("VEDOMAINS_EDGE_POSITIVE_TTL", default=300)
VEDOMAINS_EDGE_NEGATIVE_TTL = env.int("VEDOMAINS_EDGE_NEGATIVE_TTL", default=30)

# --- CDN (validated by the system checks in domains/cdn_checks.py) ------------------------
# saas-tenant (default): one CloudFront SaaS Manager tenant per domain with a CloudFront-managed
# certificate, so the customer creates ONE record. distribution-per-domain: a distribution
# cloned from the template per domain, with an ACM certificate (two records), for accounts
# without SaaS Manager.
VEDOMAINS_CDN_STRATEGY = env.str("VEDOMAINS_CDN_STRATEGY", default="saas-tenant")
if VEDOMAINS_CDN_STRATEGY not in {"distribution-per-domain", "saas-tenant"}:
    raise ImproperlyConfigured(
        "VEDOMAINS_CDN_STRATEGY must be 'distribution-per-domain' or 'saas-tenant'"
    )
# distribution-per-domain clones this distribution's config.
VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID = env.str(
    "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID", default=""
)
# saas-tenant: the multi-tenant distribution and the connection group (deploy/saas-manager.yaml).
VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID = env.str(
    "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID", default=""
)
VEDOMAINS_CDN_CONNECTION_GROUP_ID = env.str("VEDOMAINS_CDN_CONNECTION_GROUP_ID", default="")
# The tenant parameter carrying the workspace id (the distribution declares it).
VEDOMAINS_CDN_WORKSPACE_PARAMETER = env.str("VEDOMAINS_CDN_WORKSPACE_PARAMETER",
                                            default="workspaceId")
# The connection group's anycast static IPs: when set, apex domains are accepted and answered
# with A/AAAA records to these addresses. Empty: apex domains are refused with a clear 400.
VEDOMAINS_CDN_APEX_IPS = env.list("VEDOMAINS_CDN_APEX_IPS", default=[])
# How often a domain waiting for CloudFront to deploy (status "deploying") is looked at.
VEDOMAINS_CDN_DEPLOY_CHECK_SECONDS = env.int("VEDOMAINS_CDN_DEPLOY_CHECK_SECONDS", default=30)
# After a quota/capacity error (TooMany*, EntityLimitExceeded) the domain stays pending and is
# tried again this much later; staff get an alert.
VEDOMAINS_CDN_CAPACITY_RETRY_SECONDS = env.int("VEDOMAINS_CDN_CAPACITY_RETRY_SECONDS",
                                               default=300)

# Checks. The dispatcher tick is cheap (one indexed query); each domain carries its own
# adaptive next_check_at, so a tick every few seconds does not mean a check every tick.
VEDOMAINS_DISPATCH_INTERVAL_SECONDS = env.float("VEDOMAINS_DISPATCH_INTERVAL_SECONDS", default=10.0)
VEDOMAINS_CHECK_INTERVAL_SECONDS = env.int("VEDOMAINS_CHECK_INTERVAL_SECONDS", default=300)
VEDOMAINS_FAST_CHECK_SECONDS = env.int("VEDOMAINS_FAST_CHECK_SECONDS", default=10)
VEDOMAINS_FAST_CHECK_WINDOW = timedelta(minutes=env.int("VEDOMAINS_FAST_CHECK_MINUTES", default=15))
VEDOMAINS_MAX_CHECK_INTERVAL = timedelta(hours=env.int("VEDOMAINS_MAX_CHECK_HOURS", default=6))
VEDOMAINS_CHECK_LEASE = timedelta(seconds=env.int("VEDOMAINS_CHECK_LEASE_SECONDS", default=300))
VEDOMAINS_DISPATCH_LIMIT = env.int("VEDOMAINS_DISPATCH_LIMIT", default=10000)
# A queued check is not queued again for this long; a check whose message was lost runs
# once the lease ends. Longer than the queue's worst expected wait, or a backlog repeats.
VEDOMAINS_DISPATCH_LEASE = timedelta(
    seconds=env.int("VEDOMAINS_DISPATCH_LEASE_SECONDS", default=600)
)
VEDOMAINS_DISPATCH_CHUNK = max(1, env.int("VEDOMAINS_DISPATCH_CHUNK", default=25))
# DNS-ready first (domains/dns_sweep.py): every tick, a DNS-only look at this many pending
# domains that are not due (no AWS call), so one whose CNAME was just set is checked within
# seconds whatever its backed-off schedule; at most VEDOMAINS_DNS_SWEEP_CHECKS of those found
# ready are checked in the tick's own task, the rest by the dispatcher. Interval 0: off.
VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS = env.float("VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS",
                                                 default=10.0)
VEDOMAINS_DNS_SWEEP_LIMIT = env.int("VEDOMAINS_DNS_SWEEP_LIMIT", default=2000)
VEDOMAINS_DNS_SWEEP_CHECKS = env.int("VEDOMAINS_DNS_SWEEP_CHECKS", default=50)
VEDOMAINS_PENDING_TIMEOUT = timedelta(hours=env.int("VEDOMAINS_PENDING_TIMEOUT_HOURS", default=72))
VEDOMAINS_ACTIVE_RECHECK = timedelta(hours=env.int("VEDOMAINS_ACTIVE_RECHECK_HOURS", default=24))
VEDOMAINS_MISCONFIGURED_GRACE = timedelta(
    hours=env.int("VEDOMAINS_MISCONFIGURED_GRACE_HOURS", default=72)
)
VEDOMAINS_MISCONFIGURED_RECHECK = timedelta(
    minutes=env.int("VEDOMAINS_MISCONFIGURED_RECHECK_MINUTES", default=30)
)
# How soon a removal's cleanup looks again at a distribution that is still deploying.
VEDOMAINS_CLEANUP_RETRY_SECONDS = env.int("VEDOMAINS_CLEANUP_RETRY_SECONDS", default=30)
VEDOMAINS_RECONCILE_INTERVAL_SECONDS = env.int("VEDOMAINS_RECONCILE_INTERVAL_SECONDS", default=3600)
VEDOMAINS_ACM_MAX_PENDING = env.int("VEDOMAINS_ACM_MAX_PENDING", default=1000)
# One workspace's pending certificates: without it a single large plan could take the whole
# account quota above and pause registration for everyone (0 = no per-workspace cap).
VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE = env.int(
    "VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE", default=100
)
# Certificate requests per UTC day, counted in the database: ACM allows 5,000 a
# year per account by default (about 14 a day). A workspace may request max(this, its
# plan's domain limit) a day; the platform as a whole at most the second figure (0 = none).
VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY = env.int("VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY",
                                                default=10)
VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY = env.int("VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY",
                                               default=50)
# The most one workspace's plan may take of the platform's daily figure, in percent (1-100):
# an enterprise plan (1,000 domains) would otherwise spend the whole day for everyone.
VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE = env.int("VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE",
                                                default=50)

# --- Notifications, webhooks, certificate watch -----------------------------------
# Webhook POSTs: one timeout for connect and each read; retries back off exponentially
# (with jitter) from the base delay up to the cap, for the retry window after the event.
VEDOMAINS_WEBHOOK_TIMEOUT = env.float("VEDOMAINS_WEBHOOK_TIMEOUT", default=10.0)
# Webhooks go to public addresses only (SSRF); these networks (CIDRs) are allowed
# although not public: a receiver inside the VPC, or loopback for the local stack and tests.
VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS = env.list("VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS", default=[])
VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS = env.int("VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS", default=30)
VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS = env.int("VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS", default=7200)
VEDOMAINS_WEBHOOK_RETRY_WINDOW = timedelta(
    hours=env.int("VEDOMAINS_WEBHOOK_RETRY_WINDOW_HOURS", default=24)
)
# How often beat sends due webhook deliveries and notification emails (retries, and any
# whose immediate task was lost to a broker outage).
VEDOMAINS_NOTIFY_DISPATCH_INTERVAL_SECONDS = env.float(
    "VEDOMAINS_NOTIFY_DISPATCH_INTERVAL_SECONDS", default=30.0
)
# A certificate this close to expiry that is not renewing is "in trouble".
VEDOMAINS_CERTIFICATE_TROUBLE_WINDOW = timedelta(
    days=env.int("VEDOMAINS_CERTIFICATE_TROUBLE_DAYS", default=30)
)
# At most one DescribeCertificate per domain per interval, however often it is checked.
VEDOMAINS_CERTIFICATE_WATCH_INTERVAL = timedelta(
    hours=env.int("VEDOMAINS_CERTIFICATE_WATCH_HOURS", default=12)
)
VEDOMAINS_CERTIFICATE_SWEEP_INTERVAL_SECONDS = env.int(
    "VEDOMAINS_CERTIFICATE_SWEEP_INTERVAL_SECONDS", default=86400
)

# --- ve.ai integration -----------------------------------------------------------
# Sign-in with the main app's tokens: RS256/ES256 JWTs verified against its JWKS (keys are
# cached and refetched when an unknown `kid` arrives, at most once per cooldown) or against
# one static PEM public key. Off when neither is set: then only DRF tokens and sessions work.
VEDOMAINS_JWT_JWKS_URL = env.str("VEDOMAINS_JWT_JWKS_URL", default="")
VEDOMAINS_JWT_PUBLIC_KEY = env.str("VEDOMAINS_JWT_PUBLIC_KEY", default="").replace("\\n", "\n")
VEDOMAINS_JWT_ISSUER = env.str("VEDOMAINS_JWT_ISSUER", default="https://ve.ai")
# The stable name under which main-app identities (token subjects, synced members) are kept:
# the `iss` URL may change (a new auth domain) without orphaning every identity.
VEDOMAINS_JWT_ISSUER_ID = env.str("VEDOMAINS_JWT_ISSUER_ID", default="ve.ai")
VEDOMAINS_JWT_AUDIENCE = env.str("VEDOMAINS_JWT_AUDIENCE", default="vedomains")
VEDOMAINS_JWT_ALGORITHMS = env.list("VEDOMAINS_JWT_ALGORITHMS", default=["RS256", "ES256"])
if set(VEDOMAINS_JWT_ALGORITHMS) - {"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}:
    # Symmetric (HS*) and "none" would let anyone holding the public key mint tokens.
    raise ImproperlyConfigured("VEDOMAINS_JWT_ALGORITHMS accepts only RS*/ES*/PS256 algorithms")
VEDOMAINS_JWT_LEEWAY_SECONDS = env.int("VEDOMAINS_JWT_LEEWAY_SECONDS", default=60)
VEDOMAINS_JWKS_CACHE_SECONDS = env.int("VEDOMAINS_JWKS_CACHE_SECONDS", default=300)
VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS = env.int(
    "VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS", default=30
)
VEDOMAINS_JWKS_TIMEOUT = env.float("VEDOMAINS_JWKS_TIMEOUT", default=5.0)
# Service-to-service sync (workspaces, plans, members): HMAC-SHA256 request signatures with
# one of these shared secrets (several at once while rotating). Empty: the sync API is off.
VEDOMAINS_SERVICE_SECRETS = [s for s in env.list("VEDOMAINS_SERVICE_SECRETS", default=[]) if s]
VEDOMAINS_SERVICE_SIGNATURE_TOLERANCE_SECONDS = env.int(
    "VEDOMAINS_SERVICE_SIGNATURE_TOLERANCE_SECONDS", default=300
)
# Plan changes: a downgrade below the live domains blocks new ones at once; after the grace
# period the newest extras are detached. Owners are emailed at the downgrade and this long
# before the detachment.
# Hours, fractions allowed (0.5 = 30 minutes).
VEDOMAINS_PLAN_GRACE = timedelta(hours=env.float("VEDOMAINS_PLAN_GRACE_HOURS", default=168))
VEDOMAINS_PLAN_WARNING = timedelta(hours=env.float("VEDOMAINS_PLAN_WARNING_HOURS", default=24))
VEDOMAINS_PLAN_ENFORCE_INTERVAL_SECONDS = env.int(
    "VEDOMAINS_PLAN_ENFORCE_INTERVAL_SECONDS", default=300
)
# CORS for the ve.ai frontend (bearer tokens, no cookies) on the user API only.
VEDOMAINS_CORS_ALLOWED_ORIGINS = env.list(
    "VEDOMAINS_CORS_ALLOWED_ORIGINS", default=["https://ve.ai", "https://app.ve.ai"]
)
CORS_ALLOWED_ORIGINS = [o for o in VEDOMAINS_CORS_ALLOWED_ORIGINS if o]
CORS_URLS_REGEX = r"^/api/(?!service/).*$"
CORS_ALLOW_CREDENTIALS = False
CORS_PREFLIGHT_MAX_AGE = 3600
# The frontend reads when to retry (429/503), where a new record lives (201) and the id to
# quote to support; it may send its own request id to tie its logs to ours.
CORS_EXPOSE_HEADERS = ["Retry-After", "Location", "X-Request-ID"]
CORS_ALLOW_HEADERS = [*_cors_default_headers, "x-request-id"]
# --- end ve.ai integration ------------------------------------------------------------------

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

# Logs: JSON lines in production, plain text in development ("" = by DJANGO_DEBUG).
VEDOMAINS_LOG_FORMAT = env.str("VEDOMAINS_LOG_FORMAT", default="") or _logs.default_format(DEBUG)
if VEDOMAINS_LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("VEDOMAINS_LOG_FORMAT must be 'json', 'plain' or empty")
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

# Admin sign-in throttle (domains/admin_security.py): this many failures per account, or per
# client address, within the lockout time lock further sign-ins out for that long.
VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ACCOUNT = env.int("VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ACCOUNT",
                                                     default=5)
VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ADDRESS = env.int("VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ADDRESS",
                                                     default=20)
VEDOMAINS_ADMIN_LOGIN_LOCKOUT_SECONDS = env.int("VEDOMAINS_ADMIN_LOGIN_LOCKOUT_SECONDS",
                                                default=900)

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

# Web (read by vedomains_site/gunicorn.conf.py).
VEDOMAINS_WEB_PORT = env.int("VEDOMAINS_WEB_PORT", default=8000)
VEDOMAINS_WEB_WORKERS = env.int("VEDOMAINS_WEB_WORKERS", default=2)
VEDOMAINS_WEB_THREADS = env.int("VEDOMAINS_WEB_THREADS", default=4)
VEDOMAINS_WEB_TIMEOUT = env.int("VEDOMAINS_WEB_TIMEOUT", default=30)
# Peers whose X-Forwarded-* gunicorn believes: the load balancer's subnets only (never "*":
# the metrics scraper reaches the same port). gunicorn's own default is loopback.
VEDOMAINS_WEB_FORWARDED_ALLOW_IPS = env.list("VEDOMAINS_WEB_FORWARDED_ALLOW_IPS",
                                             default=["127.0.0.1", "::1"])

# Health and metrics.
VEDOMAINS_READINESS_TIMEOUT = env.float("VEDOMAINS_READINESS_TIMEOUT", default=3.0)
# /metrics answers only with "Authorization: Bearer <token>"; empty = the endpoint is off.
VEDOMAINS_METRICS_TOKEN = env.str("VEDOMAINS_METRICS_TOKEN", default="")
# Where event counters (AWS calls, task timings, webhook attempts) live; "" = the broker.
VEDOMAINS_METRICS_REDIS_URL = _redis_auth(env.str("VEDOMAINS_METRICS_REDIS_URL", default=""))
# Beat writes queue depth as CloudWatch EMF lines this often (for autoscaling); 0 = off.
VEDOMAINS_QUEUE_METRICS_INTERVAL_SECONDS = env.float(
    "VEDOMAINS_QUEUE_METRICS_INTERVAL_SECONDS", default=60.0)
VEDOMAINS_QUEUE_METRICS_NAMESPACE = env.str("VEDOMAINS_QUEUE_METRICS_NAMESPACE",
                                            default="vedomains")

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
