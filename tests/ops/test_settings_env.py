"""12-factor settings: typed environment readers and the production guard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from governance.env import ImproperlyConfiguredEnv, env_bool, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("false", False), ("False", False), ("0", False)],
)
def test_env_bool_accepts_any_case(monkeypatch, raw, expected) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG") is expected


def test_env_bool_rejects_junk_and_defaults(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfiguredEnv, match="not a boolean"):
        env_bool("X_FLAG")
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True


def test_env_file_variant_and_lists(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_str("X_SECRET") == "s3cr3t"
    monkeypatch.setenv("X_HOSTS", "a.example, b.example,,")
    assert env_list("X_HOSTS") == ["a.example", "b.example"]
    monkeypatch.setenv("X_N", "12")
    assert env_int("X_N", 3) == 12
    monkeypatch.setenv("X_N", "twelve")
    with pytest.raises(ImproperlyConfiguredEnv):
        env_int("X_N", 3)


DEV_KEY = "a-development-key"  # SECRET_KEY is required in every mode outside the test run


def _settings_in_subprocess(env: dict[str, str], expr: str) -> subprocess.CompletedProcess[str]:
    """``expr`` evaluated on the settings a fresh process reads from ``env`` (SECRET_KEY: DEV_KEY
    unless ``env`` names one; an empty one means none)."""
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL"}}
    clean["SECRET_KEY"] = DEV_KEY
    clean.update(env)
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'governance.settings'; django.setup(); "
        f"from django.conf import settings as s; print({expr})"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )


@pytest.mark.parametrize("debug", ["false", "true"])
def test_a_secret_key_is_required_in_every_mode(debug: str) -> None:
    """No fallback key, DEBUG or not: only the test run (and `make demo`, which generates one) runs without one."""
    result = _settings_in_subprocess({"DEBUG": debug, "SECRET_KEY": ""}, "s.DEBUG")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr  # the message says how to make one


def test_broker_defaults_follow_redis_url() -> None:
    embedded = _settings_in_subprocess({"DEBUG": "1"}, "s.CELERY_BROKER_URL")
    assert embedded.stdout.strip().startswith("sqla+sqlite:///")
    redis = _settings_in_subprocess({"DEBUG": "1", "REDIS_URL": "redis://127.0.0.1:6379/3"}, "s.CELERY_BROKER_URL")
    assert redis.stdout.strip() == "redis://127.0.0.1:6379/3"
    pg = _settings_in_subprocess(
        {"DEBUG": "1", "DATABASE_URL": "postgres://u:p@db.example:5432/gov"}, "s.DATABASES['default']['HOST']"
    )
    assert pg.stdout.strip() == "db.example"
