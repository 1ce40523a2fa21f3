"""Settings for the Ortto Bridge.

Every value that differs between a laptop, CI and production comes from the environment
(django-environ; a `.env` file beside manage.py is read when present). See `.env.example`.
"""

import base64
import hashlib
import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

# --- Core -------------------------------------------------------------------------------------
# Dev-safe defaults exist only with DEBUG on; production must set SECRET_KEY and ALLOWED_HOSTS.
DEBUG = env.bool("DEBUG", default=False)
SANDBOX = env.bool("SANDBOX", default=False)
if DEBUG or SANDBOX:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-secret-key-change-me-in-production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver", "[::1]"])
else:
    SECRET_KEY = env.str("SECRET_KEY")
    ALLOWED_HOSTS = [h.strip() for h in env.list("ALLOWED_HOSTS")]

PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "whitenoise.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "stores",
    "sync",
]
if SANDBOX:
    INSTALLED_APPS += [
        "sandbox",
        "sandbox.bigcommerce",
        "sandbox.ortto",
        "sandbox.mailbox",
    ]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages that BigCommerce frames opt out of DENY and send a frame-ancestors allow-list instead
    # (FrameAncestorsMiddleware, last, sees the response first).
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # BigCommerce webhook deliveries go straight to their view from here (no session, CSRF, auth, messages).
    "sync.intake.webhooks.WebhookIntakeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "stores.middleware.FrameAncestorsMiddleware",
    # Permissions-Policy everywhere; a Content-Security-Policy everywhere (the product's pages: no inline code
    # at all, frame-ancestors included, and no-store; the admin and the sandbox: nonces).
    "stores.security_headers.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "ortto_bridge.urls"
WSGI_APPLICATION = "ortto_bridge.wsgi.application"

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

# --- Database ---------------------------------------------------------------------------------
# SQLite by default (one machine); PostgreSQL in production through DATABASE_URL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process, the cluster and the sandbox share one file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 30)
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    # A file (not :memory:) so that live-server threads and worker subprocesses of a test run share it;
    # one per process so that parallel test runs on one machine never collide.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("TEST_DATABASE_NAME", default=str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3"))
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Background work (django-q2) ----------------------------------------------------------------
# retry > timeout > the longest task: a sync task works in slices of SYNC_TASK_SLICE_SECONDS and
# re-enqueues itself, so no task comes near the timeout and none is handed out twice.
REDIS_URL = env.str("REDIS_URL", default="")
SYNC_TASK_SLICE_SECONDS = env.int("SYNC_TASK_SLICE_SECONDS", default=240)
Q_CLUSTER = {
    "name": "ortto_bridge",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 600,
    "retry": 720,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 500,
    "queue_limit": 4,
    "time_zone": "UTC",
    "poll": 0.5,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
if env.bool("Q_SYNC", default=False):
    Q_CLUSTER["sync"] = True

# A shared cache so that every process sees the same cluster stats and rate-limit state.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}
    }

SYNC_INTERVAL_MINUTES = env.int("SYNC_INTERVAL_MINUTES", default=15)
# A run whose heartbeat is older than this is taken to be dead and is resumed by another worker.
SYNC_STALL_SECONDS = env.int("SYNC_STALL_SECONDS", default=120)

# --- Mail to store owners (sync/mail.py) --------------------------------------------------------
# EMAIL_URL as django-environ reads it (smtp+tls://user:password@host:587, consolemail://, ...). In
# development and the sandbox, messages are printed to the console, so no mail server is needed; in
# production Django's own default, an SMTP server on localhost, unless EMAIL_URL says otherwise.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://" if DEBUG or SANDBOX else "smtp://localhost:25")
vars().update(EMAIL_CONFIG)
if SANDBOX and "EMAIL_URL" not in os.environ:
    # `make run`: messages land in the sandbox's mailbox page (/sandbox/mailbox/), named by dotted path so
    # that no product module imports the sandbox.
    EMAIL_BACKEND = "sandbox.mailbox.backend.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Ortto Bridge <bridge@localhost>")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)

# --- Incidents and alerts (sync/health/incidents.py) -------------------------------------------------------
# Every alert to an owner also goes, as a blind copy, to support staff here (empty: no copy).
SUPPORT_ALERT_EMAIL = env.str("SUPPORT_ALERT_EMAIL", default="")
# "Many records failed": the last run of at least SYNC_ALERT_MIN_RECORDS records failed more than this share.
SYNC_ALERT_FAILED_SHARE = env.float("SYNC_ALERT_FAILED_SHARE", default=0.05)
SYNC_ALERT_MIN_RECORDS = env.int("SYNC_ALERT_MIN_RECORDS", default=20)
# "A sync stalled": an active run without progress for this long (the maintenance tick resumes a stalled run
# after SYNC_STALL_SECONDS; most stalls heal by then and are not worth an e-mail).
SYNC_ALERT_STALL_SECONDS = env.int("SYNC_ALERT_STALL_SECONDS", default=15 * 60)
# "Store changes stopped arriving": the sweep found changes no webhook announced while no webhook
# arrived for this long.
WEBHOOK_SILENCE_SECONDS = env.int("WEBHOOK_SILENCE_SECONDS", default=2 * 60 * SYNC_INTERVAL_MINUTES)
# PostgreSQL: the webhook intake's two statements are prepared once per connection (sync/intake/cursors.py).
# 0 behind a pooler in transaction mode that cannot keep prepared statements (PgBouncer < 1.21).
WEBHOOK_INTAKE_PREPARED = env.bool("WEBHOOK_INTAKE_PREPARED", default=True)

# --- Secrets at rest --------------------------------------------------------------------------
# Tokens and API keys are encrypted with Fernet. Production sets FIELD_ENCRYPTION_KEY (a Fernet key,
# `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`);
# in development it is derived from SECRET_KEY so that nothing needs configuring.
if DEBUG or SANDBOX:
    FIELD_ENCRYPTION_KEY = env.str(
        "FIELD_ENCRYPTION_KEY",
        default=base64.urlsafe_b64encode(hashlib.sha256(("fernet:" + SECRET_KEY).encode()).digest()).decode(),
    )
else:
    FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY")

# The key of the keyed hash (HMAC-SHA256) an erasure's audit row keeps instead of the email
# (sync/consent/erasure.py). Set it explicitly in production: derived from SECRET_KEY, a new SECRET_KEY
# would stop old audit rows from matching (and erased people from staying suppressed).
ERASURE_HASH_KEY = env.str(
    "ERASURE_HASH_KEY", default=hashlib.sha256(("erasure:" + SECRET_KEY).encode()).hexdigest())

# Ortto → store opt-outs (sync/consent/writeback.py): person/get calls per sweep for the check of the
# people the store believes subscribed (100 emails a call), and the unsubscribes written per sweep.
CONSENT_CHECK_CALLS_PER_SWEEP = env.int("CONSENT_CHECK_CALLS_PER_SWEEP", default=50)
CONSENT_WRITES_PER_SWEEP = env.int("CONSENT_WRITES_PER_SWEEP", default=200)
# A write-back BigCommerce refuses (403, 429, outage) is tried once a sweep, this many times, then failed
# until support retries it (sync/consent/writeback.py). 12 sweeps of 15 minutes: three hours.
CONSENT_WRITEBACK_MAX_ATTEMPTS = env.int("CONSENT_WRITEBACK_MAX_ATTEMPTS", default=12)

# --- BigCommerce --------------------------------------------------------------------------------
if SANDBOX:
    BIGCOMMERCE_CLIENT_ID = env.str("BIGCOMMERCE_CLIENT_ID", default="sandbox-client-id")
    BIGCOMMERCE_CLIENT_SECRET = env.str("BIGCOMMERCE_CLIENT_SECRET", default="sandbox-client-secret-not-for-production")
    BIGCOMMERCE_APP_ID = env.str("BIGCOMMERCE_APP_ID", default="4242")
    BIGCOMMERCE_API_URL = env.str("BIGCOMMERCE_API_URL", default=f"{PUBLIC_URL}/sandbox/bigcommerce/api")
    BIGCOMMERCE_LOGIN_URL = env.str("BIGCOMMERCE_LOGIN_URL", default=f"{PUBLIC_URL}/sandbox/bigcommerce/login")
    BIGCOMMERCE_CONTROL_PANEL_URL = env.str(
        "BIGCOMMERCE_CONTROL_PANEL_URL",
        default=f"{PUBLIC_URL}/sandbox/bigcommerce/store-{{store_hash}}/manage/app/{{app_id}}",
    )
    ORTTO_API_URL = env.str("ORTTO_API_URL", default=f"{PUBLIC_URL}/sandbox/ortto/{{region}}")
    ORTTO_APP_URL = env.str("ORTTO_APP_URL", default=f"{PUBLIC_URL}/sandbox/ortto/app/{{name}}/")
    BIGCOMMERCE_CART_RECOVERY_URL = env.str(
        "BIGCOMMERCE_CART_RECOVERY_URL",
        default=f"{PUBLIC_URL}/sandbox/bigcommerce/store-{{store_hash}}/storefront/cart.php?action=recover&token={{token}}",
    )
    # The emulators' answer latency (sandbox/latency.py): mean milliseconds per answer, +/- jitter; 0 = off.
    SANDBOX_BIGCOMMERCE_LATENCY_MS = env.int("SANDBOX_BIGCOMMERCE_LATENCY_MS", default=0)
    SANDBOX_ORTTO_LATENCY_MS = env.int("SANDBOX_ORTTO_LATENCY_MS", default=0)
    SANDBOX_LATENCY_JITTER = env.float("SANDBOX_LATENCY_JITTER", default=0.2)
    BIGCOMMERCE_STOREFRONT_URL = env.str(
        "BIGCOMMERCE_STOREFRONT_URL", default=f"{PUBLIC_URL}/sandbox/bigcommerce/store-{{store_hash}}/storefront")
    BIGCOMMERCE_CURRENT_CUSTOMER_URL = env.str(
        "BIGCOMMERCE_CURRENT_CUSTOMER_URL", default="/sandbox/bigcommerce/store-{store_hash}/customer/current.jwt")
else:
    BIGCOMMERCE_CLIENT_ID = env.str("BIGCOMMERCE_CLIENT_ID", default="")
    BIGCOMMERCE_CLIENT_SECRET = env.str("BIGCOMMERCE_CLIENT_SECRET", default="")
    BIGCOMMERCE_APP_ID = env.str("BIGCOMMERCE_APP_ID", default="")
    BIGCOMMERCE_API_URL = env.str("BIGCOMMERCE_API_URL", default="https://api.bigcommerce.com")
    BIGCOMMERCE_LOGIN_URL = env.str("BIGCOMMERCE_LOGIN_URL", default="https://login.bigcommerce.com")
    BIGCOMMERCE_CONTROL_PANEL_URL = env.str(
        "BIGCOMMERCE_CONTROL_PANEL_URL",
        default="https://store-{store_hash}.mybigcommerce.com/manage/app/{app_id}",
    )
    ORTTO_API_URL = env.str("ORTTO_API_URL", default="")
    # Where an account opens in Ortto's web app, from its instance name.
    ORTTO_APP_URL = env.str("ORTTO_APP_URL", default="https://ortto.app/{name}/")
    # The Abandoned cart activity's link back to the cart: the store's storefront with the abandoned-cart
    # token in the query string, where BigCommerce's own abandoned-cart emails put it (abandoned_carts.v3.yml:
    # "{token} is the token in the query string of the abandoned cart link"). The exact path is not public
    # (docs/ortto-contract.md, "Abandoned cart"), hence a setting; {domain}, {store_hash}, {token}, {cart_id}.
    BIGCOMMERCE_CART_RECOVERY_URL = env.str(
        "BIGCOMMERCE_CART_RECOVERY_URL", default="https://{domain}/cart.php?action=recover&token={token}")
    # A product's storefront URL is this + its custom_url.url (products_catalog.v3.yml, customUrl_Full: the
    # path relative to the storefront); {domain}, {store_hash}.
    BIGCOMMERCE_STOREFRONT_URL = env.str("BIGCOMMERCE_STOREFRONT_URL", default="https://{domain}")
    # The storefront's Current Customer API (current_customer.yml: GET /customer/current.jwt on the store's own
    # domain), as the storefront script calls it; {store_hash}.
    BIGCOMMERCE_CURRENT_CUSTOMER_URL = env.str("BIGCOMMERCE_CURRENT_CUSTOMER_URL", default="/customer/current.jwt")
BIGCOMMERCE_API_URL = BIGCOMMERCE_API_URL.rstrip("/")
BIGCOMMERCE_LOGIN_URL = BIGCOMMERCE_LOGIN_URL.rstrip("/")
ORTTO_API_URL = ORTTO_API_URL.rstrip("/")
# The OAuth scopes the app is registered with; an install that grants fewer is refused with a list.
BIGCOMMERCE_REQUIRED_SCOPES = env.list(
    "BIGCOMMERCE_REQUIRED_SCOPES",
    # store_cart_read_only: an abandoned cart's contents (GET /v3/carts/{id}) and its webhooks (carts.v3.yml).
    # store_v2_products_read_only: the catalog mirror (GET /v3/catalog/products, products_catalog.v3.yml) and
    # the store/product/* and store/sku/* webhooks.
    default=["store_v2_customers_read_only", "store_v2_orders_read_only", "store_v2_content", "store_cart_read_only",
             "store_v2_products_read_only"],
)
# Origins allowed to frame the app page (the control panel). Space-separated CSP sources.
BIGCOMMERCE_FRAME_ANCESTORS = env.list(
    "BIGCOMMERCE_FRAME_ANCESTORS",
    default=["https://*.bigcommerce.com", "https://*.mybigcommerce.com"] + ([PUBLIC_URL] if SANDBOX else []),
)
# The view that answers a verified install or load with the app page. The page shows sync's state and
# stores never imports sync, so the callbacks call it by name, as Django calls CSRF_FAILURE_VIEW.
BIGCOMMERCE_APP_PAGE_VIEW = "sync.connect.app_views.app_page"
# Says whether an install callback may spend a token exchange (request -> bool); sync's throttle, named here
# because stores never imports sync.
BIGCOMMERCE_INSTALL_THROTTLE = "sync.throttle.install_attempt"
HTTP_TIMEOUT_SECONDS = env.float("HTTP_TIMEOUT_SECONDS", default=20.0)
# Ortto's rate is per account and plan (10-60 requests/s): a client-side gate keeps every worker thread
# of a process under it instead of drawing 429s (0 = learn each account's rate from its 429s: sync/ortto/client.py, LearnedRateGate).
ORTTO_RATE_PER_SECOND = env.int("ORTTO_RATE_PER_SECOND", default=0)
ORTTO_RATE_MARGIN_SECONDS = env.float("ORTTO_RATE_MARGIN_SECONDS", default=0.05)
# Ortto batches of one page sent in parallel (order-preserving per person).
ORTTO_CONCURRENCY = env.int("ORTTO_CONCURRENCY", default=4)
# Synchronous person merges by email in flight at once, at most: Ortto warns of a concurrency limit it does
# not quantify (docs/ortto-contract.md, "Concurrency"); an AIMD limiter per account finds it below this
# ceiling (sync/engine/concurrency.py).
ORTTO_MERGE_CONCURRENCY = env.int("ORTTO_MERGE_CONCURRENCY", default=16)
# BigCommerce pages a run reads at once where the paging allows (subscribers, full-run orders id ranges;
# sync/engine/bigcommerce_pages.py): a store whose pages answer slowly still fills its quota; the client pauses
# every reader when the window runs low.
BIGCOMMERCE_READ_CONCURRENCY = env.int("BIGCOMMERCE_READ_CONCURRENCY", default=4)

# --- Auth, sessions, CSRF -----------------------------------------------------------------------
# The connect flow runs first-party in its own tab, so ordinary Lax cookies work there. The app page
# inside BigCommerce's iframe never relies on cookies: it carries a signed context token instead.
LOGIN_URL = "connect:signin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PUBLIC_URL.startswith("https://")
CSRF_COOKIE_SECURE = PUBLIC_URL.startswith("https://")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_URL])
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    # Production, as documented: TLS ends at the proxy, which sets X-Forwarded-Proto. Everything is
    # HTTPS-only (`manage.py check --deploy` passes); the load balancer's health check may use HTTP.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Refuse to start misconfigured ------------------------------------------------------------------
# Anything reachable beyond this machine never runs with a guessable or missing secret, nor with the sandbox
# mounted (the sandbox signs BigCommerce payloads with a published secret), whatever DEBUG says: DEBUG=1 on
# a public host is refused like production. Only a development or sandbox server on loopback alone (PUBLIC_URL
# and every ALLOWED_HOSTS entry: `make run`, the test suite, the reliability clusters, the benchmarks) is let off.
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]", "testserver"}


def _loopback_only() -> bool:
    from urllib.parse import urlsplit

    return urlsplit(PUBLIC_URL).hostname in _LOOPBACK and set(ALLOWED_HOSTS) <= _LOOPBACK


def _misconfigurations() -> list[str]:
    from cryptography.fernet import Fernet

    if SANDBOX:
        return ["SANDBOX is on with a non-loopback PUBLIC_URL / ALLOWED_HOSTS; the sandbox is never for "
                "production (DEBUG does not change that)."]
    problems = []
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith(("django-insecure-", "dev-only-")):
        problems.append("SECRET_KEY must be a random value of at least 50 characters.")
    try:
        Fernet(FIELD_ENCRYPTION_KEY)
    except (ValueError, TypeError):
        problems.append("FIELD_ENCRYPTION_KEY must be a Fernet key (Fernet.generate_key()).")
    if not BIGCOMMERCE_CLIENT_SECRET or not BIGCOMMERCE_CLIENT_ID:
        problems.append("BIGCOMMERCE_CLIENT_ID and BIGCOMMERCE_CLIENT_SECRET must be set.")
    return problems


if not (_loopback_only() and (DEBUG or SANDBOX)) and (_problems := _misconfigurations()):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Refusing to start: " + " ".join(_problems))

# --- Static files -------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not (DEBUG or SANDBOX)
            else "django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}

# --- I18N ---------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging ------------------------------------------------------------------------------------
# Sync work logs carry the store hash and run id (see sync/run_logging.py); secrets are never logged: every
# line, the dev server's request lines included (django.server), has tokens and codes redacted and control
# characters escaped (stores/log_filters.py), so a client cannot forge a log line.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"safe_log_lines": {"()": "stores.log_filters.SafeLogLines"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["safe_log_lines"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
