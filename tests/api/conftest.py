"""Fixtures for the API tests: tokens, bearer clients, and a check that a response matches the
OpenAPI document's schema for its operation and status."""

from __future__ import annotations

import json
import uuid
from typing import Any

import jsonschema
import pytest
from django.test import Client

from registry_app.gate.tokens import token_create


@pytest.fixture(autouse=True)
def own_rate_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rate-limit windows live in the cache, which outlives a test's database and, in CI, is a Redis
    shared by parallel test processes: each test counts under its own key prefix (never FLUSHDB)."""
    monkeypatch.setattr("registry_app.api.throttling.KEY_PREFIX", f"api-rate-test-{uuid.uuid4().hex}")


class Bearer:
    """A client that sends ``Authorization: Bearer <token>``."""

    def __init__(self, raw: str, token: Any) -> None:
        self.raw = raw
        self.token = token
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def get(self, path: str, data: dict[str, Any] | None = None) -> Any:
        return self.client.get(path, data or {})


def bearer(
    name: str = "deploy-pipeline", scopes: tuple[str, ...] = ("read:gate", "read:registry"), **kw: Any
) -> Bearer:
    token, raw = token_create(name=name, scopes=scopes, **kw)
    return Bearer(raw, token)


@pytest.fixture
def pipeline(db: None) -> Bearer:
    return bearer()


@pytest.fixture(scope="session")
def openapi() -> dict[str, Any]:
    """The document as served (JSON: status codes are strings)."""
    from ninja.responses import NinjaJSONEncoder

    from registry_app.api.app import api

    return json.loads(json.dumps(api.get_openapi_schema(), cls=NinjaJSONEncoder))


def matches_schema(doc: dict[str, Any], template: str, response: Any) -> dict[str, Any]:
    """Validate ``response``'s JSON against what ``doc`` says GET ``template`` answers with its status."""
    body = response.json()
    responses = doc["paths"][template]["get"]["responses"]
    assert str(response.status_code) in responses, f"{template} answered {response.status_code}, undocumented"
    schema = responses[str(response.status_code)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(body)
    return body
