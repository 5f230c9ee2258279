"""Django settings for Codec Arena.

Every value that differs between a laptop and a production server comes from
an environment variable, read through the typed helpers in ``evalsite.env``
and documented in docs/settings.md. The defaults run a local SQLite site with
no other service; production must set at least DEBUG=0, SECRET_KEY,
ALLOWED_HOSTS and DATABASE_URL.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from evalsite.env import env_bool, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")

# --- Core -------------------------------------------------------------------

DEBUG = env_bool("DEBUG", True)

# The development key is public (it is in this file), so a site without DEBUG
# refuses to start with it.
DEVELOPMENT_SECRET_KEY = "codec-arena-development-key-not-for-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY in {"", DEVELOPMENT_SECRET_KEY}:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a long random value when DEBUG is off "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_tasks_db",
    "evalsite",
    "studies",
    "screening",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "evalsite.urls"
WSGI_APPLICATION = "evalsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "evalsite" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------

DEFAULT_SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE_PATH}")
try:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL={DATABASE_URL!r} cannot be parsed: {exc}") from exc
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the task worker write concurrently: wait for locks
    # instead of failing, and take the write lock at the start of a transaction
    # so that two writers never deadlock on a lock upgrade.
    _database["OPTIONS"] = {
        "timeout": env_int("SQLITE_TIMEOUT", 20, minimum=1),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    if str(_database["NAME"]) not in {"", ":memory:"}:
        Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------

# Holds the rater API's rate-limit counters, which every process of the site
# must share. By default files under VAR_DIR (one host, no service, no writes to
# the database; evalsite/cache.py); CACHE_URL names a Redis server instead.
CACHE_URL = env_str("CACHE_URL", "")
if not CACHE_URL:
    _cache: dict[str, object] = {
        "BACKEND": "evalsite.cache.CounterFileCache",
        "LOCATION": str(VAR_DIR / "cache"),
        # Two counters per active client and minute; older ones are culled.
        "OPTIONS": {"MAX_ENTRIES": 20_000},
    }
elif CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    _cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
else:
    raise ImproperlyConfigured(
        f"CACHE_URL={CACHE_URL!r}: expected a redis://, rediss:// or unix:// URL, or nothing"
    )
CACHES = {"default": _cache}

# --- Background tasks -------------------------------------------------------

TASKS = {
    "default": {
        "BACKEND": env_str("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

# --- Authentication ---------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# How long a login (and a rater's browser's hold on their session) lasts.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 24 * 60 * 60, minimum=60)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "studies:study_list"
LOGOUT_REDIRECT_URL = "login"

# --- Request bodies ---------------------------------------------------------

# Form fields (not files) of one request: the site's forms are a few fields.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024**2
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = 10
# Uploaded files above this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# The first handler skips the files of a request over STUDY_UPLOAD_MAX_BYTES
# before anything is written (studies.uploads.UploadSizeLimit).
FILE_UPLOAD_HANDLERS = [
    "studies.uploads.UploadSizeLimit",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- Internationalisation ---------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files -------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "static")
MEDIA_STORAGE = env_str("MEDIA_STORAGE", "local")
if MEDIA_STORAGE not in {"local", "s3"}:
    raise ImproperlyConfigured(f"MEDIA_STORAGE={MEDIA_STORAGE!r}: expected 'local' or 's3'")
_MEDIA_BACKEND: dict[str, object] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if MEDIA_STORAGE == "s3":
    # Stimuli, source images and screening items in an S3-compatible bucket
    # (django-storages; install with `pip install codec-arena[s3]`).
    _MEDIA_BACKEND = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("S3_BUCKET", ""),
            "endpoint_url": env_str("S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("S3_REGION", "") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID", ""),
            "secret_key": env_str("S3_SECRET_ACCESS_KEY", ""),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
STORAGES = {
    "default": _MEDIA_BACKEND,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Locally (and in tests) static files come from the apps, not from STATIC_ROOT.
WHITENOISE_AUTOREFRESH = DEBUG
# Stimuli, source images and fit outputs. Never served under a guessable URL:
# rater-visible images go through an opaque token view.
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "media/"

# --- Security ---------------------------------------------------------------

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind the site's own proxy: its X-Forwarded-Proto says whether the request
# came by HTTPS, and the last hop of its X-Forwarded-For is the client's address
# (studies.ratelimits).
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# No framing; the researcher's report (framed by the study page) and the
# rater's pages (framed by MTurk) say otherwise where they need to.
X_FRAME_OPTIONS = "DENY"

# Content Security Policy on every response: only our own scripts, each with
# the request's nonce; no plugins; no framing (the rater's pages allow MTurk,
# see evalsite/framing.py).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.SELF],
}

# --- Logging ----------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Codec Arena ------------------------------------------------------------

# Rater API requests a minute per session token and per client address (many
# raters may share one address behind a NAT); 0 turns a limit off.
RATER_API_RATE_PER_SESSION = env_int("RATER_API_RATE_PER_SESSION", 240, minimum=0)
RATER_API_RATE_PER_ADDRESS = env_int("RATER_API_RATE_PER_ADDRESS", 3000, minimum=0)

# The largest body a rater API call may send: a vote is about 150 bytes, a
# session start with every recruitment field under 2 KiB.
RATER_API_MAX_BODY_BYTES = env_int("RATER_API_MAX_BODY_BYTES", 16 * 1024, minimum=1024)
# The largest upload of a study (its definition file and the zip of its folders).
STUDY_UPLOAD_MAX_BYTES = env_int("STUDY_UPLOAD_MAX_BYTES", 2 * 1024**3, minimum=1024**2)

# A rater session this many seconds after it started takes no more trials or
# new votes (0: sessions never expire).
RATER_SESSION_MAX_AGE = env_int("RATER_SESSION_MAX_AGE", 24 * 60 * 60, minimum=0)

# Where the demo study's researcher password is kept (created on first build).
DEMO_CREDENTIALS_FILE = VAR_DIR / "demo-researcher.txt"
