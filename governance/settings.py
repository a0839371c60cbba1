"""Django settings, read from the environment (12-factor).

See README.md (Configuration) for every variable. Booleans accept true/false/1/0 in any case.
``DEBUG`` defaults to False. ``SECRET_KEY`` is required in every mode but the test run (``make demo``
generates one per run); with DEBUG off it must also be strong.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from governance.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")

DEBUG = env_bool("DEBUG", False)
_secret = env_str("SECRET_KEY")
if not _secret:
    if not TESTING:
        # No fallback key, not even with DEBUG on: a key in the repository would sign sessions and
        # password-reset links for anyone who deployed with DEBUG left on.
        raise ImproperlyConfigured(
            "SECRET_KEY must be set (in every mode; `make demo` generates one): e.g. "
            "export SECRET_KEY=\"$(python -c 'import secrets; print(secrets.token_urlsafe(50))')\""
        )
    _secret = secrets.token_urlsafe(50)  # the test run: a fresh key per process
SECRET_KEY = _secret

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG or TESTING else [])
SITE_URL = (env_str("SITE_URL", "http://localhost:8000") or "").rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [SITE_URL] if SITE_URL else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "axes",
    "registry_app",
]

MIDDLEWARE = [
    "registry_app.views.errors.HostGuardMiddleware",  # a foreign Host: a plain 400, never the DEBUG page
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "registry_app.ops.middleware.RequestContextMiddleware",
    "registry_app.ops.guards.PrivatePagesMiddleware",  # Cache-Control: no-store for logged-in requests
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "registry_app.views.errors.InputErrorMiddleware",  # 400/413 pages for bad input, never the DEBUG page
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "governance.urls"
WSGI_APPLICATION = "governance.wsgi.application"
ASGI_APPLICATION = "governance.asgi.application"

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
                "registry_app.views.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'governance.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let web, worker and beat share one SQLite file in the demo.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # IMMEDIATE transactions take the write lock up front, so a worker and the web process never
    # fail with "database is locked" when a read transaction would have to upgrade to a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file (not :memory:) so worker threads share it; per process so parallel runs never collide.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-governance-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/groups/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC") or "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")) or BASE_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise scans it at start-up (empty until collectstatic)
WHITENOISE_USE_FINDERS = DEBUG or TESTING  # serve straight from static/ in development and tests
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Authentication backends: the SSO section below prepends/appends its backend; the hardening
# section puts the login-throttling backend first.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# --- Security headers and hardening (section owned by the hardening work) -------------
# Production defaults apply whenever DEBUG is off outside the test run; every one of them can be
# overridden from the environment (e.g. SECURE_SSL_REDIRECT=false behind a TLS-terminating proxy
# that already redirects). See docs/architecture.md (Security).
_PRODUCTION = not DEBUG and not TESTING
if _PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    # The same rule as Django's security.W009, but fatal: a guessable key forges sessions.
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for DEBUG off: use at least 50 characters with at least 5 distinct ones "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
    )
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _PRODUCTION)
# Load-balancer probes and the metrics scraper talk plain HTTP to the instance (paths without the
# leading slash, as SecurityMiddleware matches them).
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$", r"^metrics/?$"]
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SECURE_PROXY_SSL_HEADER", _PRODUCTION) else None
)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _PRODUCTION)
# The preload flag only makes the domain eligible (submitting it to the browsers' list is a separate,
# manual step). An operator who turns it off has decided so: the deploy check then stays quiet.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", _PRODUCTION)
if SECURE_HSTS_SECONDS and not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = [*globals().get("SILENCED_SYSTEM_CHECKS", []), "security.W021"]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _PRODUCTION)
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)  # a working day, then log in again
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", False)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content Security Policy (django-csp 4): scripts and styles only from our own static files, no
# inline script, handler or style attribute anywhere. form-action gains the OIDC provider's
# origin at the end of this file once the SSO section has configured one.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        **({"report-uri": [env_str("CSP_REPORT_URI")]} if env_str("CSP_REPORT_URI") else {}),
    }
}

# Evaluation reports: only s3:// URIs are fetched (registry_app.aws.sagemaker.parse_s3_uri), at most
# REPORT_MAX_BYTES (AWS section), and the body transfer is abandoned after this many seconds.
REPORT_FETCH_SECONDS = env_int("REPORT_FETCH_SECONDS", 60)

# The client address behind TRUSTED_PROXY_COUNT reverse proxies: the N-th entry from the right of
# X-Forwarded-For (registry_app/ops/client_ip.py). 0: REMOTE_ADDR (the app is reached directly).
# AXES_IPWARE_PROXY_COUNT is the old name (it never worked: django-ipware is not installed).
TRUSTED_PROXY_COUNT = max(0, env_int("TRUSTED_PROXY_COUNT", env_int("AXES_IPWARE_PROXY_COUNT", 0)))

# Login throttling (django-axes + registry_app/sso/throttling.py): a username is locked out *from one
# client address* after AXES_FAILURE_LIMIT failures, so nobody elsewhere can lock a person out by
# typing their name; an address is locked out of password logins after AXES_ADDRESS_FAILURE_LIMIT
# failures whatever the usernames (password spraying; 0: no such limit); both for
# AXES_COOLOFF_MINUTES; a success resets the person's count. The lockout page offers SSO, which
# stays open. The test run keeps axes off by default because Django's test client ``login()`` calls
# ``authenticate()`` without a request, which axes refuses; tests/sso/test_login_throttling.py turns it on.
AXES_ENABLED = env_bool("AXES_ENABLED", not TESTING)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_ADDRESS_FAILURE_LIMIT = max(0, env_int("AXES_ADDRESS_FAILURE_LIMIT", 30))
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # a float: axes reads it as hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "registry_app.sso.throttling.ThrottleHandler"
AXES_LOCKOUT_CALLABLE = "registry_app.sso.throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "registry_app.ops.client_ip.client_ip"
AXES_VERBOSE = False

# Password reset (local accounts only): at most this many requests per client address and per
# e-mail address within PASSWORD_RESET_WINDOW_MINUTES (counted in the cache: Redis shares the count
# between processes; the local-memory cache counts per process). Over the account limit the page
# answers as if the e-mail had gone, so it tells nobody whether an account exists.
PASSWORD_RESET_ADDRESS_LIMIT = max(1, env_int("PASSWORD_RESET_ADDRESS_LIMIT", 10))
PASSWORD_RESET_ACCOUNT_LIMIT = max(1, env_int("PASSWORD_RESET_ACCOUNT_LIMIT", 3))
PASSWORD_RESET_WINDOW_MINUTES = max(1, env_int("PASSWORD_RESET_WINDOW_MINUTES", 60))

# Request bodies: the dashboard takes small forms and no uploads. A body over REQUEST_BODY_MAX_BYTES
# (by Content-Length, any content type, multipart included) is refused with 413 before it is read
# (registry_app/views/errors.py); Django's own cap applies to urlencoded bodies and multipart fields.
REQUEST_BODY_MAX_BYTES = max(1024, env_int("REQUEST_BODY_MAX_BYTES", 1024 * 1024))
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
# --- end of hardening section ---

# --- Single sign-on: OpenID Connect (section owned by the SSO work) -------------------
# mozilla-django-oidc with the code flow (+PKCE); README.md (Single sign-on). SSO is on when both
# OIDC_OP_ISSUER and OIDC_RP_CLIENT_ID are set. Endpoints come from the issuer's discovery document
# (fetched on first use, cached) unless set explicitly; ID tokens must carry iss == OIDC_OP_ISSUER.
from registry_app.sso.roles import RoleMapError, parse_role_map  # noqa: E402 - pure, no Django import

OIDC_OP_ISSUER = (env_str("OIDC_OP_ISSUER") or "").strip().rstrip("/")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT") or ""
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT") or ""
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT") or ""
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT") or ""
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID") or ""
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET") or ""
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES") or "openid email profile"
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO") or "RS256"
OIDC_ENABLED = bool(OIDC_OP_ISSUER and OIDC_RP_CLIENT_ID)
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME") or "single sign-on"  # the button: "Sign in with <name>"
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM") or "groups"
try:
    OIDC_ROLE_MAP = parse_role_map(env_str("OIDC_ROLE_MAP"))  # "idp-group=role,..." (registry_app/auth/roles.py)
except RoleMapError as _exc:
    raise ImproperlyConfigured(str(_exc)) from _exc
OIDC_CREATE_USER = env_bool("OIDC_CREATE_USER", True)
OIDC_USE_NONCE = True
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT", 10)  # seconds, every call to the provider
OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
OIDC_CLOCK_SKEW_SECONDS = env_int("OIDC_CLOCK_SKEW_SECONDS", 60)
OIDC_DISCOVERY_CACHE_SECONDS = env_int("OIDC_DISCOVERY_CACHE_SECONDS", 3600)
OIDC_STORE_ID_TOKEN = False
OIDC_AUTHENTICATE_CLASS = "registry_app.sso.views.SSOAuthenticateView"
OIDC_CALLBACK_CLASS = "registry_app.sso.views.SSOCallbackView"
LOGIN_REDIRECT_URL_FAILURE = LOGIN_URL
# Local username/password logins (the demo's): LOCAL_LOGIN_ENABLED=false hides the form, refuses its
# POSTs and makes the password backend refuse everyone (the admin's login form included).
LOCAL_LOGIN_ENABLED = env_bool("LOCAL_LOGIN_ENABLED", True)
if OIDC_ENABLED and not OIDC_RP_CLIENT_SECRET:
    raise ImproperlyConfigured("OIDC_RP_CLIENT_SECRET must be set with OIDC_RP_CLIENT_ID")
if OIDC_ENABLED and OIDC_RP_SIGN_ALGO.lower() == "none":
    raise ImproperlyConfigured("OIDC_RP_SIGN_ALGO=none would accept unsigned ID tokens")
if not LOCAL_LOGIN_ENABLED and not OIDC_ENABLED:
    raise ImproperlyConfigured("LOCAL_LOGIN_ENABLED=false needs single sign-on (OIDC_OP_ISSUER, OIDC_RP_CLIENT_ID)")
# The password backend with the switch takes ModelBackend's place; the OIDC backend goes last (it
# answers only the callback, and refuses while OIDC_ENABLED is off).
AUTHENTICATION_BACKENDS = [
    "registry_app.sso.backends.LocalPasswordBackend" if path == "django.contrib.auth.backends.ModelBackend" else path
    for path in AUTHENTICATION_BACKENDS
] + ["registry_app.sso.backends.SSOBackend"]
# --- end of SSO section ---

# --- Observability: health checks, JSON logs, metrics (section owned by the observability work)
# Logs: one JSON object per line (python-json-logger) by default with DEBUG off, plain text in
# development and tests; LOG_FORMAT=json|plain overrides. Every record carries request_id, user,
# task_id, task_name and source (null when unknown): registry_app/observability/logs.py.
LOG_FORMAT = (env_str("LOG_FORMAT") or ("plain" if DEBUG or TESTING else "json")).strip().lower()
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use json or plain")
LOG_LEVEL = (env_str("LOG_LEVEL", "INFO") or "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "registry_app.ops.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"botocore": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}
# /readyz: a source is stale when its last successful incremental/full sync is older than this
# (unset: 3 × SYNC_INTERVAL_SECONDS + 300; 0: report ages without failing); broker connect timeout.
READY_MAX_SYNC_AGE_SECONDS = env_int("READY_MAX_SYNC_AGE_SECONDS", 0) if env_str("READY_MAX_SYNC_AGE_SECONDS") else None
READY_BROKER_TIMEOUT_SECONDS = env_int("READY_BROKER_TIMEOUT_SECONDS", 2)
# /metrics: with a token, only "Authorization: Bearer <token>"; without one it is disabled with DEBUG
# off (a warning at start-up) and served to direct loopback requests only with DEBUG on (the demo).
# The token also shows /readyz's per-check details (else only staff see them).
METRICS_TOKEN = env_str("METRICS_TOKEN") or ""
# --- end of observability section ---

# --- Email ----------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", "") or ""
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "governance@localhost") or "governance@localhost"
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)  # seconds; Django's default (none) lets a dead SMTP server hang a worker
# Without EMAIL_HOST: one .eml file per message (a mail client opens it) in EMAIL_FILE_PATH.
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "registry_app.notifications.mail_files.EmailBackend"
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
# --- Notification outbox (registry_app/notifications; README "Notifications") ---
# Review requests to one person (or one Slack/Teams channel) are collected this long and sent as one message
# (0 in tests: sent at once). The first sync of a source keeps collecting while packages keep arriving.
NOTIFY_BATCH_SECONDS = env_int("NOTIFY_BATCH_SECONDS", 0 if TESTING else 300)
NOTIFY_FIRST_SYNC_MAX_HOLD_SECONDS = env_int("NOTIFY_FIRST_SYNC_MAX_HOLD_SECONDS", 3600)
NOTIFY_DIGEST_HOUR_UTC = env_int("NOTIFY_DIGEST_HOUR_UTC", 7)  # when daily digests go out
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 8)  # then "failed" (shown on /sync/, in /metrics)
NOTIFY_RETRY_BASE_SECONDS = env_int("NOTIFY_RETRY_BASE_SECONDS", 30)  # doubled per attempt...
NOTIFY_RETRY_MAX_SECONDS = env_int("NOTIFY_RETRY_MAX_SECONDS", 3600)  # ...up to this
NOTIFY_CLAIM_LEASE_SECONDS = env_int("NOTIFY_CLAIM_LEASE_SECONDS", 300)  # a worker killed mid-send: resent after
NOTIFY_SWEEP_SECONDS = env_int("NOTIFY_SWEEP_SECONDS", 60)  # beat: send what is due, retry what failed
NOTIFY_WEBHOOK_TIMEOUT_SECONDS = env_int("NOTIFY_WEBHOOK_TIMEOUT_SECONDS", 10)

# --- Celery (read by governance/celery.py with namespace CELERY) -------------------------
REDIS_URL = env_str("REDIS_URL") or ""
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False  # opt in per task where a second run is harmless
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3300)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers unacked tasks after the visibility timeout: keep it above the longest task.
# (Only Redis takes it; kombu's SQLAlchemy transport would pass it to create_engine and fail.)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600} if CELERY_BROKER_URL.startswith("redis") else {}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Tests get a queue of their own per process, so parallel test runs (pytest-xdist, or two CI
# jobs on one Redis) never execute each other's tasks against the wrong database.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE") or (
    f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}" if TESTING else "celery"
)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# --- Celery queues and routing (section owned by the scale-out work) -------------------
# One queue per kind of work, so a push or an email never waits behind a long sync: run one
# worker (or several, on several machines) per queue; docs/scaling.md. Every queue name starts
# with CELERY_QUEUE_PREFIX: "" in production (queues "sync", "push", "audit", "email" and the
# default queue for anything else), and in tests the per-process default queue's name, so
# parallel test processes (or CI jobs) sharing one Redis never take each other's tasks.
# A worker started without -Q consumes every queue below (the demo does that).
CELERY_QUEUE_PREFIX = env_str("CELERY_QUEUE_PREFIX") or (f"{CELERY_TASK_DEFAULT_QUEUE}-" if TESTING else "")
if CELERY_QUEUE_PREFIX and not TESTING and not env_str("CELERY_TASK_DEFAULT_QUEUE"):
    # Two deployments sharing one Redis: the default queue takes the prefix too ("<prefix>celery").
    CELERY_TASK_DEFAULT_QUEUE = f"{CELERY_QUEUE_PREFIX}celery"
TASK_QUEUE_KINDS = ("sync", "push", "audit", "email")
TASK_QUEUE_NAMES = {kind: f"{CELERY_QUEUE_PREFIX}{kind}" for kind in TASK_QUEUE_KINDS}
CELERY_TASK_QUEUES = {name: {"routing_key": name} for name in (CELERY_TASK_DEFAULT_QUEUE, *TASK_QUEUE_NAMES.values())}
_ROUTED_TASKS = {
    "sync": (
        "sync_registry",
        "sync_shard",
        "sync_all_sources",
        "close_abandoned_sync_runs",
        "sync_all_endpoints",
        "poll_all_event_queues",
    ),
    # The mirror refresh follows a push, and the review state check is short: neither waits behind a long sync.
    "push": ("push", "resend_stuck_pushes", "refresh_package", "verify_review_state"),
    "audit": (
        "ingest_audit",
        "ingest_audit_all",
        "anchor_audit",
        "verify_audit",
        "backfill_audit",
        "backfill_audit_all",
    ),
    "email": (
        "notify_review_requested",
        "notify_decided",
        "notify_conflict",
        "send_sla_reminders",
        "send_revalidation_reminders",
        "sweep_notifications",
        "notify_outside_decisions",
    ),
}
CELERY_TASK_ROUTES = {
    f"registry_app.tasks.{task}": {"queue": TASK_QUEUE_NAMES[kind]}
    for kind, tasks in _ROUTED_TASKS.items()
    for task in tasks
}
# A full reconciliation fans out one task per this many model package groups (docs/scaling.md).
SYNC_SHARD_GROUPS = max(1, env_int("SYNC_SHARD_GROUPS", 10))
# --- end of Celery queues section ---

# --- Cache (Redis when available, so every web process sees the same entries) ---------------
CACHE_URL = env_str("CACHE_URL") or REDIS_URL
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Navigation queue counts are cached this long per user (0 = recompute on every page).
QUEUE_NAV_CACHE_SECONDS = env_int("QUEUE_NAV_CACHE_SECONDS", 0 if TESTING else 30)
# Deploy-gate API (/api/v1/): calls a minute per token (or signed-in person), counted in the cache; 0: no limit.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 120)

SYNC_INTERVAL_SECONDS = env_int("SYNC_INTERVAL_SECONDS", 60)
FULL_SYNC_HOUR_UTC = env_int("FULL_SYNC_HOUR_UTC", 2)
ENDPOINT_SYNC_INTERVAL_SECONDS = env_int("ENDPOINT_SYNC_INTERVAL_SECONDS", 300)
EVENTS_POLL_INTERVAL_SECONDS = env_int("EVENTS_POLL_INTERVAL_SECONDS", 20)

# --- AWS (credentials and endpoints come only from boto3's standard chain) ---------------
AWS_MAX_ATTEMPTS = env_int("AWS_MAX_ATTEMPTS", 8)
AWS_RETRY_MODE = env_str("AWS_RETRY_MODE", "standard") or "standard"
AWS_CONNECT_TIMEOUT = env_int("AWS_CONNECT_TIMEOUT", 5)
AWS_READ_TIMEOUT = env_int("AWS_READ_TIMEOUT", 30)
SYNC_THREADS = env_int("SYNC_THREADS", 8)
REPORT_MAX_BYTES = env_int("REPORT_MAX_BYTES", 5 * 1024 * 1024)
# The lease is renewed every few seconds while a sync progresses, so it only bounds how long a
# sync killed mid-run (worker killed, connection dropped) keeps its source from syncing.
SYNC_LOCK_SECONDS = env_int("SYNC_LOCK_SECONDS", 900)

# --- Audit evidence (README: Configuration; docs/audit-anchor.md) ------------------------------
# Where the audit chain's head is anchored: an s3://bucket/prefix/ (Object Lock in compliance mode
# recommended), written with the dashboard's own credentials; empty: a file under VAR_DIR.
AUDIT_ANCHOR_S3_URI = env_str("AUDIT_ANCHOR_S3_URI", "") or ""
AUDIT_ANCHOR_REGION = (
    env_str("AUDIT_ANCHOR_REGION")
    or os.environ.get("AWS_REGION")
    or os.environ.get("AWS_DEFAULT_REGION")
    or "us-east-1"
)
AUDIT_ANCHOR_FILE = env_str("AUDIT_ANCHOR_FILE") or str(VAR_DIR / "audit-anchors.jsonl")  # without the S3 URI
AUDIT_ANCHOR_INTERVAL_SECONDS = env_int("AUDIT_ANCHOR_INTERVAL_SECONDS", 3600)
AUDIT_VERIFY_HOUR_UTC = env_int("AUDIT_VERIFY_HOUR_UTC", 3)
# Empty (the default): a new source's whole trail is read, its history backfilled newest first in the
# background. A number opts out: the first S3 pass starts that many days back and nothing older is read.
_initial_days = env_str("AUDIT_S3_INITIAL_DAYS", "") or ""
AUDIT_S3_INITIAL_DAYS = int(_initial_days) if _initial_days.strip() else None
AUDIT_BACKFILL_SLICE_SECONDS = env_int("AUDIT_BACKFILL_SLICE_SECONDS", 120)
AUDIT_BACKFILL_PAUSE_SECONDS = env_int("AUDIT_BACKFILL_PAUSE_SECONDS", 5)
AUDIT_BACKFILL_REBUILD_SECONDS = env_int("AUDIT_BACKFILL_REBUILD_SECONDS", 600)
AUDIT_BACKFILL_NICE = env_int("AUDIT_BACKFILL_NICE", 10)
AUDIT_DIGEST_VALIDATION = env_bool("AUDIT_DIGEST_VALIDATION", True)
AUDIT_DIGEST_GRACE_MINUTES = env_int("AUDIT_DIGEST_GRACE_MINUTES", 180)


# --- Hardening: CSP form-action for the OIDC provider (read last, after the SSO section) --------
# Browsers hold the redirects that follow a form submission to form-action, so an SSO login started
# by a form post must be allowed to land on the provider: allow the authorization endpoint's origin
# (explicit, or the issuer's, whose discovery document normally names one on the same origin).
def _origin(url: object) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(str(url or ""))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in {"https", "http"} and parts.netloc else ""


for _oidc_url in (globals().get("OIDC_OP_AUTHORIZATION_ENDPOINT"), globals().get("OIDC_OP_ISSUER")):
    _oidc_origin = _origin(_oidc_url)
    if _oidc_origin and _oidc_origin not in CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"]:
        CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(_oidc_origin)
