"""Who may read /metrics and /readyz's details: the token always, loopback only in DEBUG and never
through a proxy, staff for /readyz; anonymous callers learn ready / not ready and nothing else."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from registry_app.ops import access
from registry_app.ops.access import Access, metrics_access, proxied
from tests.factories import RegistrySourceFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-token"
# Each of these reaches the app only through a proxy (the outside probe was served with the
# last four while X-Forwarded-For, Forwarded and X-Real-IP were refused).
PROXY_HEADERS = [
    {"X-Forwarded-For": "203.0.113.9"},
    {"Forwarded": "for=203.0.113.9"},
    {"X-Real-IP": "203.0.113.9"},
    {"Via": "1.1 nginx"},
    {"X-Forwarded-Host": "governance.example.com"},
    {"CF-Connecting-IP": "203.0.113.9"},
    {"X-Forwarded-For": ""},
    {"True-Client-IP": "203.0.113.9"},
    {"X-Forwarded-Proto": "https"},
]


# --------------------------------------------------------------------------------------------- /metrics


def test_a_configured_token_is_required(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    # From anywhere, proxied or not, with the token.
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.9"})
    assert ok.status_code == 200
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_without_a_token_and_debug_off_metrics_are_disabled(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    response = client.get("/metrics")  # even from loopback, even straight to the process
    assert response.status_code == 404
    assert b"METRICS_TOKEN" in response.content


def test_the_disabled_state_is_logged_once_at_start_up(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    access._mode_logged = False
    with caplog.at_level(logging.WARNING, logger="registry_app.ops.access"):
        Client().get("/healthz")  # a new handler builds the middleware, as a starting web process does
        Client().get("/healthz")
    assert [r.getMessage() for r in caplog.records].count(
        "/metrics is disabled: set METRICS_TOKEN to serve it (to scrapers sending the bearer token)"
    ) == 1


def test_debug_serves_direct_loopback_requests_only(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    settings.DEBUG = True
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.7").status_code == 403


@pytest.mark.parametrize(
    "headers", PROXY_HEADERS, ids=lambda h: next(iter(h)) + ("=" if not next(iter(h.values())) else "")
)
def test_debug_refuses_anything_that_came_through_a_proxy(client: Client, settings: Any, headers: dict) -> None:
    settings.METRICS_TOKEN = ""
    settings.DEBUG = True
    assert client.get("/metrics", headers=headers).status_code == 403


def test_debug_refuses_loopback_when_the_app_is_declared_behind_a_proxy(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    settings.DEBUG = True
    settings.TRUSTED_PROXY_COUNT = 1  # nginx's plain proxy_pass sends no header at all
    assert client.get("/metrics").status_code == 403


@pytest.mark.parametrize(
    ("token", "authorization", "remote", "is_proxied", "debug", "expected"),
    [
        ("t", "Bearer t", "203.0.113.1", True, False, Access.ALLOWED),
        ("t", "Bearer  t ", "10.0.0.1", False, False, Access.ALLOWED),
        ("t", "Bearer tt", "127.0.0.1", False, True, Access.UNAUTHORIZED),
        ("t", "", "127.0.0.1", False, True, Access.UNAUTHORIZED),  # a token is required even on loopback
        ("", "", "127.0.0.1", False, False, Access.DISABLED),
        ("", "Bearer ", "127.0.0.1", False, False, Access.DISABLED),
        ("", "", "127.0.0.1", False, True, Access.ALLOWED),
        ("", "", "127.0.0.1", True, True, Access.FORBIDDEN),
        ("", "", "192.168.1.5", False, True, Access.FORBIDDEN),
        ("", "", "garbage", False, True, Access.FORBIDDEN),
    ],
)
def test_metrics_access(
    token: str, authorization: str, remote: str, is_proxied: bool, debug: bool, expected: Access
) -> None:
    got = metrics_access(token=token, authorization=authorization, remote_addr=remote, proxied=is_proxied, debug=debug)
    assert got is expected


def test_proxy_detection_is_by_presence() -> None:
    assert proxied({"HTTP_X_FORWARDED_FOR": ""})
    assert proxied({"HTTP_X_ENVOY_EXTERNAL_ADDRESS": "1.2.3.4"})
    assert not proxied({"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost", "HTTP_USER_AGENT": "Prometheus"})


# --------------------------------------------------------------------------------------------- /readyz


def _readyz(client: Client, **headers: str) -> dict[str, Any]:
    response = client.get("/readyz", headers=headers)
    assert response.status_code in (200, 503)
    assert "Set-Cookie" not in response.headers
    return response.json()


def test_anonymous_callers_get_the_verdict_only(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # a broker address that must not leak
    RegistrySourceFactory(name="secret-source-name")
    body = _readyz(client)
    assert body == {"status": "not ready"}
    assert _readyz(client, Authorization="Bearer wrong") == {"status": "not ready"}
    logged_in = Client()
    logged_in.force_login(UserFactory(username="reviewer"))
    assert logged_in.get("/readyz").json() == {"status": "not ready"}  # a login is not enough: staff only


def test_staff_and_the_token_get_the_details(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    RegistrySourceFactory(name="prod")
    detailed = _readyz(client, Authorization=f"Bearer {TOKEN}")
    assert set(detailed["checks"]) == {"database", "broker", "sync", "audit"}
    assert "prod" in detailed["checks"]["sync"]["sources"]
    staff = Client()
    staff.force_login(UserFactory(username="operator", is_staff=True))
    assert set(staff.get("/readyz").json()["checks"]) == {"database", "broker", "sync", "audit"}


def test_without_a_token_only_staff_get_the_details(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert set(_readyz(client, Authorization="Bearer ")) == {"status"}
