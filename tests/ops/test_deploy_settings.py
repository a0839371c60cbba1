"""Production settings: ``check --deploy`` is clean, the defaults are secure, each is overridable,
a weak SECRET_KEY is refused, and the probes are exempt from the HTTPS redirect."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parent.parent.parent
STRONG_KEY = secrets.token_urlsafe(50)
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": STRONG_KEY,
    "SITE_URL": "https://governance.example.com",
    "ALLOWED_HOSTS": "governance.example.com",
}
# Variables a developer's shell or CI may hold that would change what the subprocess sees.
_SCRUB = {
    "SECRET_KEY",
    "DEBUG",
    "DATABASE_URL",
    "REDIS_URL",
    "SITE_URL",
    "ALLOWED_HOSTS",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set for the rest of the process once a browser test has run
    "SESSION_COOKIE_AGE",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "AXES_ENABLED",
    "OIDC_OP_ISSUER",
    "OIDC_RP_CLIENT_ID",
    "OIDC_RP_CLIENT_SECRET",
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "LOCAL_LOGIN_ENABLED",
}


def _env(extra: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("PYTEST")}
    env.update({"VAR_DIR": str(tmp_path), "STATIC_ROOT": str(tmp_path / "static")}, **extra)
    return env


def _manage(args: list[str], extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=_env(extra, tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _setting(expr: str, extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'governance.settings'; django.setup(); "
        f"from django.conf import settings as s; print(repr({expr}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=_env(extra, tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output
    assert "WARNING" not in output and "ERROR" not in output


def test_production_defaults(tmp_path: Path) -> None:
    expr = (
        "(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_AGE, "
        "s.SESSION_EXPIRE_AT_BROWSER_CLOSE, s.AXES_ENABLED, s.SECURE_CROSS_ORIGIN_OPENER_POLICY, s.X_FRAME_OPTIONS)"
    )
    result = _setting(expr, PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(
        (True, True, True, 31536000, True, True, ("HTTP_X_FORWARDED_PROTO", "https"), 28800, False, True)
        + ("same-origin", "DENY")
    )


def test_each_default_is_overridable(tmp_path: Path) -> None:
    overrides = {
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "600",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "false",
        "SECURE_HSTS_PRELOAD": "false",
        "SECURE_PROXY_SSL_HEADER": "false",
        "SESSION_COOKIE_AGE": "900",
        "SESSION_EXPIRE_AT_BROWSER_CLOSE": "true",
    }
    expr = (
        "(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_AGE, "
        "s.SESSION_EXPIRE_AT_BROWSER_CLOSE)"
    )
    result = _setting(expr, {**PRODUCTION, **overrides}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr((False, False, False, 600, False, False, None, 900, True))


def test_development_keeps_plain_http(tmp_path: Path) -> None:
    result = _setting(
        "(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER)",
        {"DEBUG": "true", "SECRET_KEY": "a-development-key"},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr((False, False, 0, None))


@pytest.mark.parametrize(
    "key",
    ["short-key", "a" * 60, "abcd" * 20, "django-insecure-" + secrets.token_urlsafe(50)],
    ids=["short", "one-char", "four-chars", "django-insecure"],
)
def test_weak_secret_key_is_refused_when_debug_is_off(key: str, tmp_path: Path) -> None:
    result = _setting("s.SECRET_KEY", {**PRODUCTION, "SECRET_KEY": key}, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY is too weak" in result.stderr


def test_weak_secret_key_is_fine_in_development(tmp_path: Path) -> None:
    result = _setting("s.SECRET_KEY", {"DEBUG": "true", "SECRET_KEY": "dev"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "'dev'"


@pytest.mark.parametrize("debug", ["false", "true"])
def test_missing_secret_key_is_still_refused(debug: str, tmp_path: Path) -> None:
    result = _setting("s.SECRET_KEY", {"DEBUG": debug}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


# -------------------------------------------------------------------------------- HTTPS redirect


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True)
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_are_not_redirected_to_https(path: str) -> None:
    response = Client().get(path)  # plain http, as a load balancer probes an instance
    assert response.status_code != 301, response.get("Location")
    assert not str(response.get("Location", "")).startswith("https://")


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True)
@pytest.mark.parametrize("path", ["/groups/", "/accounts/login/", "/admin/", "/healthz/extra", "/metricsx"])
def test_everything_else_is_redirected_to_https(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 301
    assert response["Location"] == f"https://testserver{path}"


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_the_proxy_header_marks_a_request_secure() -> None:
    response = Client().get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200


def test_exempt_patterns_are_anchored() -> None:
    import re

    from django.conf import settings

    def exempt(path: str) -> bool:
        return any(re.search(pattern, path.lstrip("/")) for pattern in settings.SECURE_REDIRECT_EXEMPT)

    assert all(exempt(p) for p in ("/healthz", "/readyz", "/metrics", "/healthz/"))
    assert not any(exempt(p) for p in ("/groups/healthz", "/healthz/x", "/readyzz", "/admin/metrics"))


def test_csp_form_action_allows_the_oidc_provider(tmp_path: Path) -> None:
    sso = {
        "OIDC_OP_ISSUER": "https://idp.example.com/realms/acme",
        "OIDC_RP_CLIENT_ID": "governance",
        "OIDC_RP_CLIENT_SECRET": "not-a-real-secret",
    }
    expr = "s.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']"
    assert _setting(expr, PRODUCTION, tmp_path).stdout.strip() == repr(["'self'"])
    issuer_only = _setting(expr, {**PRODUCTION, **sso}, tmp_path)
    assert issuer_only.stdout.strip() == repr(["'self'", "https://idp.example.com"]), issuer_only.stderr
    explicit = _setting(
        expr,
        {**PRODUCTION, **sso, "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://login.example.net/oauth2/authorize"},
        tmp_path,
    )
    assert explicit.stdout.strip() == repr(["'self'", "https://login.example.net", "https://idp.example.com"])
