"""Settings for the platform, read from the environment (see .env.example).

With no environment at all the platform runs on an SQLite file under ``var/``
and an embedded Redis that the run command starts itself, so a fresh laptop
needs nothing but Python. It runs in production mode unless ``DEBUG=true``
(which ``bin/run`` and the tests set): then ``SECRET_KEY`` is required.
"""

import ipaddress
import os
import re
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet as _fernet_check
from django.core.exceptions import ImproperlyConfigured

from cdplatform.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_list_of,
    env_rate,
    env_str,
    env_time_zone,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
if not ALLOWED_HOSTS and not DEBUG:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name at least one host when DEBUG is false")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from /static/, no CDN
    "guardian",
    "channels",
    "django_rq",
    "apps.accounts",
    "apps.pipelines",
    "apps.deployments",
    "apps.triggers",
    "apps.notifications",
    "apps.canary",
    "bench",  # the benchmark commands (manage.py bench_engine, bench_api, bench_live)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # /static/ from STATIC_ROOT (after collectstatic), with or without DEBUG.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cdplatform.urls"
WSGI_APPLICATION = "cdplatform.wsgi.application"
ASGI_APPLICATION = "cdplatform.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database -------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'cdplatform.sqlite3'}")
try:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # Web process and workers share the file: take the write lock when a
    # transaction starts (so select_for_update's intent holds) and wait for it
    # instead of failing with "database is locked".
    _database["CONN_MAX_AGE"] = 0
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (worker processes open it too), one per test run so that runs side by side do not collide.
    _database["TEST"] = {"NAME": str(VAR_DIR / f"test-cdplatform-{os.getpid()}.sqlite3")}
else:
    _database["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: job queue and live-update channel layer -----------------------
EMBEDDED_REDIS_PORT = env_int("EMBEDDED_REDIS_PORT", 6399, minimum=1, maximum=65535)
# With no REDIS_URL the run and test commands start the embedded Redis.
EMBEDDED_REDIS = not env_str("REDIS_URL", "")
REDIS_URL = env_url("REDIS_URL", "", ("redis", "rediss", "unix")) or f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"

RQ_QUEUES = {
    # The engine uses only this queue, so a plain `manage.py rqworker` serves it.
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
}
# Queues every worker serves after "default", in this order: notifications' sends
# (apps/notifications/delivery.py), so that a burst of messages never delays a pipeline's steps.
RQ_BACKGROUND_QUEUES = ["notifications"]
RQ = {
    # Non-forking worker: an engine step is a few milliseconds of database
    # work, and a fork per job would cost several times that (see README).
    "WORKER_CLASS": "cdplatform.workers.EngineWorker",
}

# Pub/sub layer: a group message is one PUBLISH, which the engine's workers
# send from synchronous code in the same Redis round trip as their next jobs
# (apps/pipelines/events.py).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "cdplatform"},
    }
}

# --- Authentication -------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The dashboard's own sign-in page; after signing in, the applications page.
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "pipelines:applications"
LOGOUT_REDIRECT_URL = "accounts:login"

# --- API ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "cdplatform.api.pagination.NewestFirstPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "cdplatform.api.errors.exception_handler",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "cdplatform API",
    "DESCRIPTION": "Applications, pipelines and executions of the continuous-delivery platform.",
    "VERSION": "1.0.0",
    "COMPONENT_SPLIT_REQUEST": True,
    # /api/docs/ and /api/redoc/ load their scripts from this platform, so they work without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ApplicationActionEnum": "apps.pipelines.governance.APPLICATION_ACTIONS",
        "StatusEnum": "apps.pipelines.choices.Status",
        "DeliveryStatusEnum": "apps.notifications.choices.DeliveryStatus",
        "NotificationTypeEnum": "apps.notifications.choices.TargetType",
        "ArtifactTypeEnum": "apps.deployments.models.ArtifactType",
        # read, use, manage: the grants of artifact and metrics accounts alike.
        "UsableAccountActionEnum": "apps.deployments.governance.ARTIFACT_ACCOUNT_ACTIONS",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "cdplatform.api.schema.add_error_responses",
    ],
}

# --- Sign-in lockout and API rate limits ----------------------------------
# Sign-in (the dashboard's and the admin's) is watched by django-axes: after
# LOGIN_FAILURE_LIMIT failures for a user name, or from an address, further
# attempts are refused, even with the right password, for LOGIN_LOCKOUT_SECONDS
# after the last failure (apps/accounts/lockout.py). API requests are limited
# per token (or signed-in user) and, unauthenticated, per address
# (cdplatform/api/throttling.py), counted in Redis so every web process shares them.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
API_RATE_LIMIT_CLIENT = env_rate("API_RATE_LIMIT_CLIENT", "120/minute")
API_RATE_LIMIT_ANONYMOUS = env_rate("API_RATE_LIMIT_ANONYMOUS", "30/minute")
# Proxies in front of the web process that append the client's address to
# X-Forwarded-For; 0 (no proxy) uses the connection's address and ignores the header.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)

INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last: turns a refused sign-in into the lockout page
AUTHENTICATION_BACKENDS.insert(0, "axes.backends.AxesStandaloneBackend")
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Attempts refused during a lockout are not counted: the lockout ends LOGIN_LOCKOUT_SECONDS after the last failure.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "apps.accounts.audit.client_ip"
AXES_DISABLE_ACCESS_LOG = True  # sign-in failures and lockouts go to the audit log
AXES_ENABLE_ADMIN = False  # apps/accounts/admin.py shows the attempts, with an audited unlock
AXES_VERBOSE = False
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cdplatform-throttle",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    },
}
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "cdplatform.api.throttling.ClientRateThrottle",
    "cdplatform.api.throttling.AnonymousRateThrottle",
]

# --- Engine ---------------------------------------------------------------
# How long engine work may be overdue (a stage step, an execution's start)
# before the sweeper presumes its message lost and queues it again.
ENGINE_STAGE_LEASE_SECONDS = env_int("ENGINE_STAGE_LEASE_SECONDS", 60, minimum=1)
# Time zone in which stages' restrictedExecutionWindow hours are read.
EXECUTION_WINDOW_TIME_ZONE = env_time_zone("EXECUTION_WINDOW_TIME_ZONE", "UTC")
# How often the sweeper runs: once per interval across all workers (a periodic job).
ENGINE_SWEEP_INTERVAL_SECONDS = env_int("ENGINE_SWEEP_INTERVAL_SECONDS", 15, minimum=1)
# How long one job may keep running the next stage of a chain itself instead
# of queueing it (0: every stage step is a job of its own).
ENGINE_INLINE_SECONDS = env_float("ENGINE_INLINE_SECONDS", 1.0, minimum=0.0)
if ENGINE_INLINE_SECONDS > ENGINE_STAGE_LEASE_SECONDS:
    # A job running a chain inline that long would see the sweeper re-queue the stages it is about to run.
    raise ImproperlyConfigured(
        f"ENGINE_INLINE_SECONDS={ENGINE_INLINE_SECONDS} must not be more than "
        f"ENGINE_STAGE_LEASE_SECONDS={ENGINE_STAGE_LEASE_SECONDS}"
    )
# How many times in a row a stage's step may be lost (its worker died, its
# message vanished) before the sweeper fails the stage instead of re-queueing it.
ENGINE_MAX_STEP_ATTEMPTS = env_int("ENGINE_MAX_STEP_ATTEMPTS", 3, minimum=1)

# Limits of one evaluation of a stage's expressions (apps/pipelines/expressions/budget.py):
# CPU milliseconds, characters of one expression, items of one value an
# expression builds, items built in all, bits of an integer. Over a limit,
# the expression fails its stage with the limit's name.
EXPRESSION_TIME_LIMIT_MS = env_int("EXPRESSION_TIME_LIMIT_MS", 250, minimum=1, maximum=60_000)
EXPRESSION_MAX_LENGTH = env_int("EXPRESSION_MAX_LENGTH", 10_000, minimum=100, maximum=1_000_000)
EXPRESSION_MAX_VALUE_SIZE = env_int("EXPRESSION_MAX_VALUE_SIZE", 1_000_000, minimum=1_000, maximum=100_000_000)
EXPRESSION_MAX_TOTAL_SIZE = env_int("EXPRESSION_MAX_TOTAL_SIZE", 10_000_000, minimum=1_000, maximum=1_000_000_000)
if EXPRESSION_MAX_TOTAL_SIZE < EXPRESSION_MAX_VALUE_SIZE:
    raise ImproperlyConfigured(
        f"EXPRESSION_MAX_TOTAL_SIZE={EXPRESSION_MAX_TOTAL_SIZE} must not be less than "
        f"EXPRESSION_MAX_VALUE_SIZE={EXPRESSION_MAX_VALUE_SIZE}"
    )
EXPRESSION_MAX_INTEGER_BITS = env_int("EXPRESSION_MAX_INTEGER_BITS", 4096, minimum=64, maximum=1_000_000)

# Days the durable event log keeps an event (apps/pipelines/eventlog.py);
# an event a registered consumer has not read yet is kept longer. Notifications' final
# deliveries and Slack's recorded requests are kept as long (apps/notifications/retention.py).
EVENT_RETENTION_DAYS = env_int("EVENT_RETENTION_DAYS", 30, minimum=1)

# --- Triggers (apps/triggers) ---------------------------------------------
# Days an inbound event (a webhook, a registry notification, a cron firing) and what it matched are kept.
TRIGGER_EVENT_RETENTION_DAYS = env_int("TRIGGER_EVENT_RETENTION_DAYS", 14, minimum=1)
# The largest webhook body read; a bigger one is refused 413 before it is parsed.
TRIGGER_MAX_BODY_BYTES = env_int("TRIGGER_MAX_BODY_BYTES", 1_000_000, minimum=1_000, maximum=20_000_000)
# Requests per client address and webhook path (Redis-counted; past it, 429).
TRIGGER_RATE_LIMIT = env_rate("TRIGGER_RATE_LIMIT", "600/minute")
# Bearer tokens the CI (Jenkins notification) and registry notification endpoints require; unset: closed.
TRIGGER_CI_TOKEN = env_str("TRIGGER_CI_TOKEN", "")
TRIGGER_REGISTRY_TOKEN = env_str("TRIGGER_REGISTRY_TOKEN", "")
# Registry accounts whose v2 API is polled for new tags (for registries that cannot notify), by name,
# comma-separated; each call passes the OUTBOUND_URL_* policy. Polled every interval.
TRIGGER_POLLED_REGISTRY_ACCOUNTS = env_list("TRIGGER_POLLED_REGISTRY_ACCOUNTS", [])
TRIGGER_POLL_INTERVAL_SECONDS = env_int("TRIGGER_POLL_INTERVAL_SECONDS", 60, minimum=1)

# Modules imported at start that register more stage types (plugins; the
# tests' own stage types), as dotted paths.
STAGE_TYPE_MODULES = env_list("STAGE_TYPE_MODULES", [])

# --- Deployments (apps/deployments: Docker engines, registries, load balancers) ----------
# Seconds one call to a Docker engine may take (a build or a push is bounded by DOCKER_BUILD_TIMEOUT_SECONDS).
DOCKER_API_TIMEOUT_SECONDS = env_int("DOCKER_API_TIMEOUT_SECONDS", 30, minimum=1)
# Seconds a bake's build and push may take in all.
DOCKER_BUILD_TIMEOUT_SECONDS = env_int("DOCKER_BUILD_TIMEOUT_SECONDS", 600, minimum=1)
# Directories a bake may read a context or a git repository from (a path outside them is refused).
BAKE_LOCAL_ROOTS = env_list("BAKE_LOCAL_ROOTS", [])
# Seconds between the engine's health checks of a server group's instances.
DOCKER_HEALTH_INTERVAL_SECONDS = env_float("DOCKER_HEALTH_INTERVAL_SECONDS", 0.5, minimum=0.05)
# The value of the io.cdplatform.owner label on everything this installation makes on a shared engine.
DOCKER_OWNER_LABEL = env_str("DOCKER_OWNER_LABEL", "cdplatform")
# The address load balancers (the proxies the platform runs) listen on.
LOAD_BALANCER_BIND_ADDRESS = env_str("LOAD_BALANCER_BIND_ADDRESS", "127.0.0.1")
# Where each load balancer's nginx keeps its config, pid file and logs; the nginx binary.
LOAD_BALANCER_STATE_DIR = env_str("LOAD_BALANCER_STATE_DIR", str(BASE_DIR / "var" / "load-balancers"))
LOAD_BALANCER_NGINX = env_str("LOAD_BALANCER_NGINX", "nginx")
# Seconds a target taken out of a load balancer keeps its container, so requests in flight finish.
LOAD_BALANCER_DRAIN_SECONDS = env_float("LOAD_BALANCER_DRAIN_SECONDS", 2.0, minimum=0)
# Seconds between the checks that keep each server group at its desired capacity.
SERVER_GROUP_RECONCILE_SECONDS = env_int("SERVER_GROUP_RECONCILE_SECONDS", 5, minimum=1)
# The port of the demo's load balancer (bin/run's demo pipeline deploys behind it when a Docker engine answers).
DEMO_LOAD_BALANCER_PORT = env_int("DEMO_LOAD_BALANCER_PORT", 8089, minimum=1)

# --- Canary analysis (apps/canary: Prometheus metrics accounts, the kayentaCanary stage) ----------
# A Prometheus server canary analyses may query as the metrics account "prometheus" with no other
# configuration (a stored account of that name takes its place). Its calls pass the OUTBOUND_URL_* policy.
PROMETHEUS_URL = env_url("PROMETHEUS_URL", "", ("http", "https"))
# Seconds one query to a metrics account may take.
CANARY_QUERY_TIMEOUT_SECONDS = env_float("CANARY_QUERY_TIMEOUT_SECONDS", 10.0, minimum=0.1)

# --- Outbound calls (webhook stages; apps/pipelines/outbound.py) ----------
# URL schemes an outbound call may use.
OUTBOUND_URL_ALLOWED_SCHEMES = env_list_of("OUTBOUND_URL_ALLOWED_SCHEMES", ["http", "https"], ("http", "https"))
# Regular expressions, each matched against the whole host name of a URL; a
# host that matches none of them is refused.
OUTBOUND_URL_ALLOWED_HOSTS = env_list("OUTBOUND_URL_ALLOWED_HOSTS", [".*"])
# Networks (CIDR) outbound calls may reach although they are not public:
# loopback, private, link-local, unique-local, NAT64, unspecified and the
# other special-purpose ranges are refused unless listed here (see
# apps/pipelines/outbound.py, BUILT_IN_DENIED). Default: none.
OUTBOUND_URL_ALLOWED_NETWORKS = env_list("OUTBOUND_URL_ALLOWED_NETWORKS", [])
# Networks (CIDR) no outbound call may reach, even when they are public or in
# OUTBOUND_URL_ALLOWED_NETWORKS. Default: none.
OUTBOUND_URL_DENIED_NETWORKS = env_list("OUTBOUND_URL_DENIED_NETWORKS", [])
for _pattern in OUTBOUND_URL_ALLOWED_HOSTS:
    try:
        re.compile(_pattern)
    except re.error as exc:
        raise ImproperlyConfigured(f"OUTBOUND_URL_ALLOWED_HOSTS: {_pattern!r} is not a regex: {exc}") from None
for _name, _cidrs in (
    ("OUTBOUND_URL_ALLOWED_NETWORKS", OUTBOUND_URL_ALLOWED_NETWORKS),
    ("OUTBOUND_URL_DENIED_NETWORKS", OUTBOUND_URL_DENIED_NETWORKS),
):
    for _cidr in _cidrs:
        try:
            ipaddress.ip_network(_cidr, strict=False)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{_name}={_cidr!r} is not a network: {exc}") from None
# Seconds a webhook request may take to connect, and to answer.
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
# How many times a webhook request (the call, or one status poll) is tried
# when it times out, cannot connect, or gets a retryable status (5xx, 429).
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 5, minimum=1)
# First delay before retrying a webhook request; it doubles with each attempt, up to 60 s.
WEBHOOK_RETRY_BACKOFF_SECONDS = env_float("WEBHOOK_RETRY_BACKOFF_SECONDS", 1.0, minimum=0.0)
# Seconds between two polls of a webhook's status URL (waitForCompletion),
# unless the stage sets monitorPollIntervalSeconds.
WEBHOOK_MONITOR_INTERVAL_SECONDS = env_float("WEBHOOK_MONITOR_INTERVAL_SECONDS", 5.0, minimum=0.1)

# --- Notifications and chat-ops (apps/notifications) -----------------------
# The platform's address as people reach it, for the links in notifications (no trailing slash).
PUBLIC_URL = env_url("PUBLIC_URL", "http://127.0.0.1:8000", ("http", "https")).rstrip("/")
if not PUBLIC_URL:
    raise ImproperlyConfigured("PUBLIC_URL='' names no host (the address people reach the platform at)")
# Slack: the bot token (xoxb-...) that posts and updates messages, the signing secret that
# proves a button click or a slash command came from Slack, and the Web API's base URL.
SLACK_BOT_TOKEN = env_str("SLACK_BOT_TOKEN", "")
SLACK_SIGNING_SECRET = env_str("SLACK_SIGNING_SECRET", "")
SLACK_API_URL = env_url("SLACK_API_URL", "https://slack.com/api/", ("http", "https"))
if not SLACK_API_URL:
    raise ImproperlyConfigured("SLACK_API_URL='' names no host (default https://slack.com/api/)")
SLACK_API_URL = SLACK_API_URL.rstrip("/") + "/"
if SLACK_BOT_TOKEN and not SLACK_BOT_TOKEN.startswith(("xoxb-", "xoxp-")):
    raise ImproperlyConfigured("SLACK_BOT_TOKEN=(not shown) is not a Slack token (xoxb-... for a bot)")
# E-mail notifications: Django's SMTP settings.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "cdp@localhost")
if "@" not in DEFAULT_FROM_EMAIL:
    raise ImproperlyConfigured(f"DEFAULT_FROM_EMAIL={DEFAULT_FROM_EMAIL!r} is not an e-mail address")
# How many times a notification is tried before it is given up (FAILED), and the first delay
# between tries; it doubles with each, up to 10 minutes.
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 5, minimum=1, maximum=50)
NOTIFICATION_RETRY_BACKOFF_SECONDS = env_float("NOTIFICATION_RETRY_BACKOFF_SECONDS", 5.0, minimum=0.0)
# Seconds one notification call may take (connect and answer).
NOTIFICATION_TIMEOUT_SECONDS = env_float("NOTIFICATION_TIMEOUT_SECONDS", 10.0, minimum=0.1)

# Fernet keys (comma-separated) that encrypt application secrets at rest: the
# first encrypts, every one decrypts, so a new key goes first and the old one
# stays until `manage.py reencrypt_secrets` has run. Empty: with DEBUG a
# development key is derived from SECRET_KEY (a warning says so); without
# DEBUG secrets can be neither stored nor used until a key is set.
SECRETS_ENCRYPTION_KEYS = env_list("SECRETS_ENCRYPTION_KEYS", [])
for _position, _key in enumerate(SECRETS_ENCRYPTION_KEYS, start=1):
    try:
        _fernet_check(_key)
    except ValueError:
        raise ImproperlyConfigured(
            f"SECRETS_ENCRYPTION_KEYS=(key {_position}, not shown) is not a Fernet key (32 url-safe base64 bytes; make "
            "one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        ) from None
# Decided here, from DEBUG as the process was started (the test runner turns DEBUG off later).
SECRETS_USE_DEVELOPMENT_KEY = DEBUG and not SECRETS_ENCRYPTION_KEYS

# --- Internationalisation, static files -----------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where `manage.py collectstatic` puts the files the web process serves (WhiteNoise).
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # collectstatic also writes each file gzipped, which WhiteNoise serves to clients that accept it.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if DEBUG:
    # In development WhiteNoise serves the app directories; STATIC_ROOT need not exist.
    warnings.filterwarnings("ignore", message="No directory at")

# --- Production: HTTPS, the proxy in front, cookies, request size, API docs --
# Cookies only over HTTPS (default: on unless DEBUG).
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# Strict-Transport-Security max-age in seconds (0: no header).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Redirect plain-HTTP requests to HTTPS (behind a proxy, needs SECURE_PROXY_SSL_HEADER).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Origins (scheme://host[:port], "*." allowed in the host) whose unsafe requests CSRF accepts
# besides the request's own host.
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not re.fullmatch(r"https?://(\*\.)?[A-Za-z0-9.\-\[\]:]+", _origin):
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS: {_origin!r} is not an origin (scheme://host[:port], e.g. https://cd.example.com)"
        )
# The header a TLS-terminating proxy sets to "https" (e.g. X-Forwarded-Proto); only when that proxy
# is the sole way in and it overwrites the header, since anyone else could send it.
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header and not re.fullmatch(r"[A-Za-z0-9-]+", _proxy_ssl_header):
    raise ImproperlyConfigured(
        f"SECURE_PROXY_SSL_HEADER={_proxy_ssl_header!r} is not a header name (X-Forwarded-Proto)"
    )
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
# Take the host from the proxy's X-Forwarded-Host (still checked against ALLOWED_HOSTS).
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
# Largest request body in bytes (a larger one is refused with 413).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440, minimum=1024)
# Largest pipeline document in bytes as JSON, once YAML aliases are expanded.
PIPELINE_DOCUMENT_MAX_BYTES = env_int("PIPELINE_DOCUMENT_MAX_BYTES", DATA_UPLOAD_MAX_MEMORY_SIZE, minimum=1024)
# The OpenAPI schema (/api/schema/) and docs (/api/docs/) for anyone, or (default) the signed-in.
API_SCHEMA_PUBLIC = env_bool("API_SCHEMA_PUBLIC", False)
SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"] = ["cdplatform.api.schema.SchemaAccess"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # While a stage uses secrets, their values are replaced by *** in every record (apps/pipelines/secrets/).
    "filters": {"secrets": {"()": "apps.pipelines.secrets.redaction.RedactSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["secrets"]}},
    "root": {
        "handlers": ["console"],
        "level": env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    },
}
