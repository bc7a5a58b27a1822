"""Settings shared by every environment; each value comes from the environment (see env.example)."""

from pathlib import Path

import environ
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A local .env is a convenience for the local run; containers get their environment from compose (the image has
# no .env, and django-environ would warn about the missing file in every process).
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="insecure-local-only-key")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

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
    "django_celery_beat",
    # Each app imports only the ones listed before it (docs/architecture.md, "Apps").
    "core",
    "chat",
    "delivery",
    "scheduler",
    "api",
]

MIDDLEWARE = [
    "realmate.db_deadline.QueryDeadlineMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "realmate.urls"
CSRF_FAILURE_VIEW = "realmate.error_views.csrf_failure"
WSGI_APPLICATION = "realmate.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/realmate")}
# Persistent connections: a webhook costs one INSERT, a new connection per request would cost more than that.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
# No health check query before each request (Django's default): it is a round trip on every webhook. A connection
# that broke while idle fails its request with 503 (the sender retries) and Django drops it at the request's end.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=False)
DATABASES["default"].setdefault("OPTIONS", {})
# psycopg 3 with server-side binding: parameters travel apart from the SQL, and psycopg prepares a statement by
# itself once a connection has run it `prepare_threshold` times, the ORM's queries and raw SQL alike. Django
# turns that off unless told (prepare_threshold None, for transaction-mode poolers); psycopg's own default is 5.
# Preparing pays off on the hot statements (bench/README.md, "Measured in-process").
DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", True)
DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", env.int("DB_PREPARE_THRESHOLD", default=5))
# Fail fast when PostgreSQL is unreachable so the webhook can answer 503 instead of hanging.
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 3)
# If a worker dies mid-query, PostgreSQL notices within a second and releases the job's row locks, instead of
# holding them until the query ends; its messages are still pending, and the next reply job takes them.
DATABASES["default"]["OPTIONS"].setdefault("options", "-c client_connection_check_interval=1000")
# A database host that vanishes (no reset, packets dropped) is noticed in about 20 s on an idle connection, and
# in 5 s when data we sent stays unacknowledged, instead of the kernel's hours.
DATABASES["default"]["OPTIONS"].setdefault("keepalives", 1)
DATABASES["default"]["OPTIONS"].setdefault("keepalives_idle", 10)
DATABASES["default"]["OPTIONS"].setdefault("keepalives_interval", 5)
DATABASES["default"]["OPTIONS"].setdefault("keepalives_count", 2)
DATABASES["default"]["OPTIONS"].setdefault("tcp_user_timeout", 5000)
# Wall time a web request's query may take before the webhook answers 503 (realmate/db_deadline.py); 0 = none.
DB_QUERY_TIMEOUT_SECONDS = env.float("DB_QUERY_TIMEOUT_SECONDS", default=4.0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
# Naive webhook timestamps are read in this zone, and the spec says they are UTC.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The built web UI (frontend/dist, base /static/) is collected with the admin's and Swagger UI's files.
STATICFILES_DIRS = [path for path in [BASE_DIR / "frontend" / "dist"] if path.exists()]
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Reads are open unless API_AUTH_REQUIRED (api/access.py); the webhook's guard is its HMAC signature.
API_AUTH_REQUIRED = env.bool("API_AUTH_REQUIRED", default=False)
REST_FRAMEWORK = {
    # A token for API clients, the session for the UI (a staff member logged in through /admin/login/).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.access.ReadAccess"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "WhatsApp conversation sync service",
    "DESCRIPTION": "Receives conversation webhooks, stores them and answers each burst of user messages once.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's assets come from drf-spectacular-sidecar's static files: the docs page needs no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ConversationStatusEnum": "chat.models.Conversation.Status",
        "HealthStatusEnum": ["ok", "fail"],
    },
}

# --- Timing rules (docs/contract.md). Windows are measured on arrival time with the database clock.
GROUP_WINDOW_SECONDS = env.float("GROUP_WINDOW_SECONDS", default=5.0)
ORPHAN_TTL_SECONDS = env.float("ORPHAN_TTL_SECONDS", default=6.0)
SWEEP_INTERVAL_SECONDS = env.float("SWEEP_INTERVAL_SECONDS", default=1.0)
# Conversations one reply job answers at most, in one transaction (scheduler.replies); bench/README.md has the
# measurement behind the default.
REPLY_BATCH_SIZE = env.int("REPLY_BATCH_SIZE", default=500)
# Caps on a group that keeps growing (a user who writes every few seconds would otherwise never be answered): it
# is answered once its first message has waited this long, or as soon as it holds this many messages.
MAX_GROUP_WAIT_SECONDS = env.float("MAX_GROUP_WAIT_SECONDS", default=60.0)
MAX_GROUP_MESSAGES = env.int("MAX_GROUP_MESSAGES", default=50)
# A person takes a conversation over (chat.takeover): an AGENT_MESSAGE pauses the bot's replies until this many
# seconds after the agent's latest message (PAUSE_BOT without `seconds` pauses this long too).
BOT_PAUSE_SECONDS = env.float("BOT_PAUSE_SECONDS", default=1800.0)
# Words or phrases (comma-separated) with which a user asks for a person: the message's group is answered at once
# and the bot pauses. Matched as whole words, ignoring case and accents (chat.handoff). Empty: none.
HANDOFF_KEYWORDS = env.list("HANDOFF_KEYWORDS", default=[])
# Parked messages that were attached or expired are purged after this many days.
PARKED_RETENTION_DAYS = env.int("PARKED_RETENTION_DAYS", default=7)
# Conversations whose last activity is older than this many days are erased, with everything about them, by a
# daily purge (chat.erasure). None (empty): kept forever.
CONVERSATION_RETENTION_DAYS = env.float("CONVERSATION_RETENTION_DAYS", default=None)

# A conversation's detail (and the webhook's answers) carries at most this many messages, the newest, with a
# cursor to the older ones: an ordinary conversation fits whole, a runaway one does not fill a response.
MESSAGES_PER_PAGE = env.int("MESSAGES_PER_PAGE", default=1000)

# --- Webhook
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
# One or more secrets separated by spaces, newest first (core.signing): a request signed by any of them is accepted.
WEBHOOK_SECRET = env("WEBHOOK_SECRET", default="")
# A request signed the Standard Webhooks way is refused when its webhook-timestamp is further than this from now.
WEBHOOK_TOLERANCE_SECONDS = env.float("WEBHOOK_TOLERANCE_SECONDS", default=300.0)
# Django refuses bodies over this size before any view runs; keep it at the webhook's own limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY_BYTES

# --- Reply delivery (delivery.services): off while REPLY_WEBHOOK_URL is empty.
# Every reply is POSTed there once its transaction commits, signed with each of REPLY_WEBHOOK_SECRET's secrets
# (separated by spaces, newest first) when set.
REPLY_WEBHOOK_URL = env("REPLY_WEBHOOK_URL", default="")
REPLY_WEBHOOK_SECRET = env("REPLY_WEBHOOK_SECRET", default="")
# A batch's POSTs, at most this many in flight at once (delivery.client); a conversation's replies go one by one.
REPLY_WEBHOOK_CONCURRENCY = env.int("REPLY_WEBHOOK_CONCURRENCY", default=16)
# POSTs a second to the receiver at most, shared by every delivery process (delivery.pace); empty: no limit.
REPLY_WEBHOOK_RATE = env.float("REPLY_WEBHOOK_RATE", default=None)
# Due deliveries one delivery job claims and POSTs at most (delivery.services); bench/README.md has the measurement.
REPLY_DELIVERY_BATCH = env.int("REPLY_DELIVERY_BATCH", default=500)
# One POST may take this long before it counts as a timeout (and is retried). A delivery job's own time limits
# follow from it (delivery.services.time_limits), not from CELERY_TASK_*_TIME_LIMIT.
REPLY_WEBHOOK_TIMEOUT_SECONDS = env.float("REPLY_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Retries wait a random time up to BACKOFF x 2^(attempt - 1), capped at BACKOFF_MAX (a Retry-After asks for more).
REPLY_DELIVERY_BACKOFF_SECONDS = env.int("REPLY_DELIVERY_BACKOFF_SECONDS", default=2)
REPLY_DELIVERY_BACKOFF_MAX_SECONDS = env.int("REPLY_DELIVERY_BACKOFF_MAX_SECONDS", default=300)
# No retry starts later than this after the reply was written: the delivery is then `failed`.
REPLY_DELIVERY_MAX_SECONDS = env.float("REPLY_DELIVERY_MAX_SECONDS", default=24 * 3600.0)
# While the receiver's circuit breaker is open (delivery.circuit), one probe every this many seconds, nothing else.
REPLY_CIRCUIT_PROBE_SECONDS = env.float("REPLY_CIRCUIT_PROBE_SECONDS", default=5.0)

# --- Celery
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
# A job is acknowledged after it ran, and requeued when its worker process dies: jobs are idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=10)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=20)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Reconnect to the broker for as long as it is away (Celery's default gives up after 100 attempts, and the
# connection retries every second: realmate.celery.BrokerConnection).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Celery's Django fixup closes the database connections around every job unless this is set; set, it closes them
# only every this many jobs, and realmate.celery drops broken and old ones around each job as Django's requests do.
CELERY_DB_REUSE_MAX = 1000
# A job running when the broker connection drops is cancelled (Celery 6's default): its ack could not be sent
# anyway, and its rows are still pending: the next reply job takes them.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Keep Django's JSON logging in the worker instead of Celery's plain text.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Beat must wake at least once per sweep interval, or a 1 s schedule would drift to beat's default 5 s.
CELERY_BEAT_MAX_LOOP_INTERVAL = min(1.0, SWEEP_INTERVAL_SECONDS)
# The schedule is rows that ops edit in the admin (django-celery-beat); scheduler/schedulers.py adds beat's liveness
# file, scheduler/beat.py shapes its logging.
CELERY_BEAT_SCHEDULER = "scheduler.schedulers:DatabaseScheduler"
# Sweeps have a queue of their own, declared first, so a burst of reply jobs never delays them. Declared here,
# not on the worker's command line: a worker started the standard way (`celery -A realmate worker`, no --queues)
# consumes every declared queue. realmate.worker warns at start when a worker does not consume the sweep queue.
SWEEP_QUEUE = "sweep"
# Reply jobs (and any job without a route of its own).
REPLIES_QUEUE = "replies"
CELERY_TASK_DEFAULT_QUEUE = REPLIES_QUEUE
# Reply deliveries wait on another system, so they have a queue of their own, which the `delivery` role consumes
# and the `worker` role does not (bin/entrypoint.sh): a slow receiver cannot hold the processes that write replies.
DELIVERY_QUEUE = "delivery"
CELERY_TASK_QUEUES = [Queue(SWEEP_QUEUE), Queue(REPLIES_QUEUE), Queue(DELIVERY_QUEUE)]
CELERY_TASK_ROUTES = {
    "scheduler.sweep": {"queue": SWEEP_QUEUE},
    "scheduler.parked_messages_purge": {"queue": SWEEP_QUEUE},
    "delivery.deliveries_send": {"queue": DELIVERY_QUEUE},
    "delivery.deliveries_wake_due": {"queue": DELIVERY_QUEUE},
}
# Publishing must not hang a sweep for long when Redis is down; the next sweep asks again.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# Celery logs two INFO lines per job (received, succeeded): with a sweep every second that is most of the log.
# They show at LOG_LEVEL=DEBUG; the service logs its own line for every reply batch.
job_log_level = "DEBUG" if LOG_LEVEL == "DEBUG" else "WARNING"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "realmate.logging.JsonFormatter"}},
    "filters": {"broker_outage": {"()": "scheduler.beat.BrokerOutageFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery.worker.strategy": {"level": job_log_level},
        "celery.app.trace": {"level": job_log_level},
        # Beat's line per task sent, every second; its failed sends during an outage: one warning (scheduler/beat.py).
        "celery.beat": {"level": job_log_level, "filters": ["broker_outage"]},
    },
}
