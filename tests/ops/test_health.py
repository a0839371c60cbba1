"""/healthz and /readyz: exact paths, no login or session, and each readiness check failing on its own."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from django.contrib.sessions.models import Session
from django.db import OperationalError, connections
from django.test import Client
from django.utils import timezone

from registry_app.models import RegistrySource, SyncRun
from registry_app.ops import health
from tests.factories import RegistrySourceFactory, SyncRunFactory

UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


def ago(**kwargs: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(**kwargs)


def run(source: RegistrySource, *, finished: dt.datetime, **fields: Any) -> SyncRun:
    values: dict[str, Any] = {"started_at": finished - dt.timedelta(seconds=5), "finished_at": finished, **fields}
    return SyncRunFactory(source=source, **values)


def added(name: str, *, when: dt.datetime) -> RegistrySource:
    source = RegistrySourceFactory(name=name)
    RegistrySource.objects.filter(pk=source.pk).update(created_at=when)  # auto_now_add
    source.refresh_from_db()
    return source


DETAILS_TOKEN = "readyz-details-token"


@pytest.fixture(autouse=True)
def details_token(settings: Any) -> None:
    settings.METRICS_TOKEN = DETAILS_TOKEN  # the details below are for the token (or staff) only


def readyz(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz", headers={"Authorization": f"Bearer {DETAILS_TOKEN}"})
    assert response["Content-Type"] == "application/json"
    assert "Set-Cookie" not in response.headers  # no session, no CSRF cookie
    return response.status_code, response.json()


# --------------------------------------------------------------------------------------------- /healthz


def test_healthz_is_ok_without_login_database_or_session(
    client: Client, django_assert_num_queries: Any, db: None
) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert "Set-Cookie" not in response.headers
    assert "no-cache" in response["Cache-Control"]


def test_health_paths_are_exact_and_never_redirect(client: Client, db: None) -> None:
    for path in ("/healthz", "/readyz"):
        assert client.get(path).status_code in (200, 503), path  # served, not redirected to a slash or a login
    assert client.get("/healthz/").status_code == 404  # APPEND_SLASH never applies to a matching path
    assert client.post("/healthz").status_code == 405


# --------------------------------------------------------------------------------------------- /readyz


def test_readyz_ready_reports_every_check(client: Client, db: None) -> None:
    prod = RegistrySourceFactory(name="prod")
    run(prod, finished=ago(minutes=2), mode=SyncRun.Mode.INCREMENTAL)
    RegistrySourceFactory(name="retired", enabled=False)  # never synced, but disabled: not checked

    status, body = readyz(client)

    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "sync", "audit"}
    assert all(check["ok"] for check in body["checks"].values())
    sync = body["checks"]["sync"]
    assert set(sync["sources"]) == {"prod"}
    assert 100 < sync["sources"]["prod"]["age_seconds"] < 200
    assert sync["max_age_seconds"] == 3 * 60 + 300  # default: 3 × SYNC_INTERVAL_SECONDS + 5 min
    assert Session.objects.count() == 0


def test_readyz_database_down(client: Client, db: None) -> None:
    with mock.patch.object(connections["default"], "cursor", side_effect=OperationalError("connection refused")):
        status, body = readyz(client)
    assert status == 503
    assert body["status"] == "not ready"
    database = body["checks"]["database"]
    assert database == {"ok": False, "detail": "OperationalError (details in the log)"}
    assert body["checks"]["sync"] == {"ok": False, "detail": "not checked: the database is unavailable"}
    assert body["checks"]["broker"]["ok"] is True


def test_readyz_broker_down(client: Client, db: None, settings: Any) -> None:
    settings.CELERY_BROKER_URL = UNREACHABLE_BROKER
    status, body = readyz(client)
    assert status == 503
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["detail"].endswith("(details in the log)")
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["sync"]["ok"] is True


def test_readyz_stale_sync(client: Client, db: None, settings: Any) -> None:
    settings.READY_MAX_SYNC_AGE_SECONDS = 600
    fresh, stale = RegistrySourceFactory(name="fresh"), RegistrySourceFactory(name="stale")
    run(fresh, finished=ago(minutes=5))
    run(stale, finished=ago(minutes=30), mode=SyncRun.Mode.FULL)
    # Newer runs that do not prove the registry was listed: a failure, an endpoint pass, an event.
    run(stale, finished=ago(minutes=1), status=SyncRun.Status.FAILED)
    run(stale, finished=ago(minutes=1), mode=SyncRun.Mode.ENDPOINTS)
    run(stale, finished=ago(minutes=1), mode=SyncRun.Mode.EVENT)

    status, body = readyz(client)

    assert status == 503
    sync = body["checks"]["sync"]
    assert sync["ok"] is False
    assert sync["detail"] == "stale: stale"
    assert sync["sources"]["fresh"]["ok"] is True
    assert sync["sources"]["stale"]["ok"] is False
    assert 1790 < sync["sources"]["stale"]["age_seconds"] < 1900
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def test_a_partial_sync_counts_as_fresh(client: Client, db: None) -> None:
    prod = RegistrySourceFactory(name="prod")
    run(prod, finished=ago(minutes=1), status=SyncRun.Status.PARTIAL)
    status, body = readyz(client)
    assert status == 200, body


def test_never_synced_source_is_ready_only_while_new(client: Client, db: None, settings: Any) -> None:
    settings.READY_MAX_SYNC_AGE_SECONDS = 600
    added("brand-new", when=ago(minutes=2))
    status, body = readyz(client)
    assert status == 200, body
    assert body["checks"]["sync"]["sources"]["brand-new"]["last_success"] is None
    assert body["checks"]["sync"]["sources"]["brand-new"]["detail"].startswith("never synced")

    added("forgotten", when=ago(hours=3))
    status, body = readyz(client)
    assert status == 503
    assert body["checks"]["sync"]["sources"]["forgotten"]["ok"] is False
    assert body["checks"]["sync"]["sources"]["brand-new"]["ok"] is True


def test_max_age_zero_reports_ages_without_failing(client: Client, db: None, settings: Any) -> None:
    settings.READY_MAX_SYNC_AGE_SECONDS = 0
    run(RegistrySourceFactory(name="prod"), finished=ago(days=3))
    status, body = readyz(client)
    assert status == 200
    assert body["checks"]["sync"]["sources"]["prod"]["age_seconds"] > 3 * 86400 - 60


def test_default_max_age_follows_the_sync_interval(settings: Any) -> None:
    settings.READY_MAX_SYNC_AGE_SECONDS = None
    settings.SYNC_INTERVAL_SECONDS = 120
    assert health.max_sync_age_seconds() == 3 * 120 + 300


def test_freshness_check_is_one_query_whatever_the_runs(db: None, django_assert_num_queries: Any) -> None:
    for n in range(3):
        source = RegistrySourceFactory(name=f"s{n}")
        for minutes in range(1, 6):
            run(source, finished=ago(minutes=minutes))
    with django_assert_num_queries(1):
        result = health.check_sync_freshness()
    assert result.ok
    assert sorted(result.data["sources"]) == ["s0", "s1", "s2"]


@pytest.mark.parametrize("url", [UNREACHABLE_BROKER, "amqp://guest:guest@127.0.0.1:1//"])
def test_broker_check_fails_fast_without_retrying(url: str) -> None:
    result = health.check_broker(url, timeout=1)
    assert result.ok is False
    assert "guest" not in result.detail
