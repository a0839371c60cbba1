"""Rate limits per token, and no input ever makes a 500: hostile strings in every path and query value."""

from __future__ import annotations

from typing import Any
from unittest import mock
from urllib.parse import quote

import pytest
from django.test import Client

from registry_app.models import AuditLogEntry
from tests.api.conftest import Bearer, bearer
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory
from tests.hostile import PAYLOADS

pytestmark = pytest.mark.django_db


def test_over_the_limit_is_429_with_retry_after_and_per_token(settings: Any) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    busy, other = bearer("busy"), bearer("other")
    assert [busy.get("/api/v1/groups/").status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = busy.get("/api/v1/groups/")
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert other.get("/api/v1/groups/").status_code == 200  # another token has its own window
    # refused calls are not audited (a runaway loop must not flood the chain)
    assert AuditLogEntry.objects.filter(action="api.call").count() == 4


def test_the_limit_is_per_person_for_sessions(settings: Any, personas: dict[str, Any]) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    client = Client()
    client.force_login(personas["viewer"])
    assert [client.get("/api/v1/groups/").status_code for _ in range(2)] == [200, 429]


def test_a_failing_cache_lets_calls_through(pipeline: Bearer) -> None:
    with mock.patch("registry_app.api.throttling.cache.incr", side_effect=ConnectionError("redis down")):
        assert pipeline.get("/api/v1/groups/").status_code == 200


def test_zero_disables_the_limit(settings: Any, pipeline: Bearer) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    assert {pipeline.get("/api/v1/groups/").status_code for _ in range(5)} == {200}


HOSTILE = (
    *PAYLOADS[:6],
    "\x00",
    "a\x00b",
    "%00",
    "../../etc/passwd",
    "' OR 1=1 --",
    "𝕱𝖗𝖆𝖚𝖉",
    "\u202e\u0000",
    "x" * 5000,
    "-1",
    "99999999999999999999",
    "1e9",
    " ",
    "[]",
    "{}",
    "null",
    "2025-02-30",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01",
    "Zm9v",  # base64 "foo"
    "eyJ2IjogIjEifQ",  # base64 {"v": "1"}
    "eyJuIjogWzFdLCAiaSI6IDF9",  # base64 {"n": [1], "i": 1}
)
QUERY_PARAMS = {
    "/api/v1/groups/": ("source", "limit", "cursor"),
    "/api/v1/groups/fraud-detector/packages/": ("source", "status", "since", "limit", "cursor"),
    "/api/v1/groups/fraud-detector/approved/latest": ("source",),
    "/api/v1/packages/check": ("arn",),
    "/api/v1/packages/fraud-detector/1": ("source",),
}
PATHS = (
    "/api/v1/groups/{}/approved/latest",
    "/api/v1/groups/{}/packages/",
    "/api/v1/packages/{}/1",
    "/api/v1/packages/fraud-detector/{}",
)


def _sane(response: Any) -> None:
    assert response.status_code < 500, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    if response.status_code >= 400:
        body = response.json()
        assert set(body) >= {"error", "detail"}


@pytest.fixture
def site() -> None:
    ModelPackageFactory(group=ModelPackageGroupFactory(name="fraud-detector"), version=1)


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_never_make_a_500(site: None, pipeline: Bearer, value: str) -> None:
    for path, names in QUERY_PARAMS.items():
        for name in names:
            _sane(pipeline.get(path, {name: value}))
    for template in PATHS:
        _sane(pipeline.client.get(template.format(quote(value, safe=""))))


def test_unknown_paths_and_methods_answer_json(pipeline: Bearer) -> None:
    for path in ("/api/v1/", "/api/v1/nope", "/api/v1/groups", "/api/v1/packages/a/b/c"):
        response = pipeline.get(path)
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    response = pipeline.client.post("/api/v1/groups/")
    assert response.status_code == 405 and response["Content-Type"].startswith("application/json")
