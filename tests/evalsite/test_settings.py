"""Settings come from the environment, fail loudly, and are all documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETTINGS = REPO / "evalsite" / "settings.py"
DOCS = REPO / "docs" / "settings.md"


def _django_setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL"}
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="evalsite.settings")
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'])"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True
    )


def test_it_refuses_to_start_without_debug_on_the_default_secret_key() -> None:
    result = _django_setup({"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_it_starts_without_debug_when_a_secret_key_is_given() -> None:
    result = _django_setup({"DEBUG": "0", "SECRET_KEY": "x" * 50})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


def test_secret_key_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("y" * 50 + "\n", encoding="utf-8")
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SECRET_KEY)"
    )
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DEBUG="0", SECRET_KEY_FILE=str(secret), DJANGO_SETTINGS_MODULE="evalsite.settings")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "y" * 50


def test_a_bad_boolean_names_the_variable_and_value() -> None:
    result = _django_setup({"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_database_url_selects_postgresql() -> None:
    result = _django_setup({"DATABASE_URL": "postgres://u@db.example:5433/arena"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.postgresql"


def test_a_malformed_database_url_is_named() -> None:
    result = _django_setup({"DATABASE_URL": "nonsense://"})
    assert result.returncode != 0
    assert "DATABASE_URL='nonsense://'" in result.stderr


def _variables_read_by_settings() -> set[str]:
    text = SETTINGS.read_text(encoding="utf-8")
    return set(re.findall(r'env_(?:str|bool|int|list|path)\(\s*"([A-Z_]+)"', text))


def test_every_environment_variable_is_documented() -> None:
    variables = _variables_read_by_settings()
    assert {"DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "MEDIA_ROOT"} <= variables
    documented = DOCS.read_text(encoding="utf-8")
    missing = sorted(v for v in variables if f"`{v}`" not in documented)
    assert missing == []


def test_docs_say_secrets_may_come_from_files() -> None:
    assert "`SECRET_KEY_FILE`" in DOCS.read_text(encoding="utf-8")


def _setting(env: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    """``print(expression)`` in a process whose settings read ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="evalsite.settings")
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True
    )


def test_media_can_live_in_an_s3_compatible_bucket() -> None:
    result = _setting(
        {"MEDIA_STORAGE": "s3", "S3_BUCKET": "arena", "S3_ENDPOINT_URL": "https://s3.example"},
        "settings.STORAGES['default']",
    )
    assert result.returncode == 0, result.stderr
    assert "storages.backends.s3.S3Storage" in result.stdout
    assert "'bucket_name': 'arena'" in result.stdout
    assert "'endpoint_url': 'https://s3.example'" in result.stdout


def test_an_unknown_media_storage_is_named() -> None:
    result = _setting({"MEDIA_STORAGE": "ftp"}, "1")
    assert result.returncode != 0
    assert "MEDIA_STORAGE='ftp': expected 'local' or 's3'" in result.stderr


def test_cache_url_selects_redis_and_the_default_is_shared_files() -> None:
    result = _setting({"CACHE_URL": "redis://127.0.0.1:6379/1"}, "settings.CACHES['default']")
    assert result.returncode == 0, result.stderr
    assert "django.core.cache.backends.redis.RedisCache" in result.stdout
    assert "'LOCATION': 'redis://127.0.0.1:6379/1'" in result.stdout
    default = _setting({"VAR_DIR": "/srv/arena/var"}, "settings.CACHES['default']")
    assert "evalsite.cache.CounterFileCache" in default.stdout
    assert "'LOCATION': '/srv/arena/var/cache'" in default.stdout


def test_an_unknown_cache_url_is_named() -> None:
    result = _setting({"CACHE_URL": "memcached://x"}, "1")
    assert result.returncode != 0
    assert "CACHE_URL='memcached://x'" in result.stderr


def test_logins_and_rater_sessions_last_a_day_unless_told_otherwise() -> None:
    expression = "settings.SESSION_COOKIE_AGE, settings.RATER_SESSION_MAX_AGE"
    assert _setting({}, expression).stdout.strip() == "86400 86400"
    told = _setting({"SESSION_COOKIE_AGE": "3600", "RATER_SESSION_MAX_AGE": "7200"}, expression)
    assert told.stdout.strip() == "3600 7200"
