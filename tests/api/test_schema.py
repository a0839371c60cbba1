"""The OpenAPI document validates, lists every operation, and every answer matches it: the 200s and
every error status an operation can give (400, 401, 403, 404, 429)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from openapi_spec_validator import validate

from tests.api.conftest import Bearer, bearer, matches_schema
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory
from tests.gate.builders import approve_via_dashboard, package_with_metrics

pytestmark = pytest.mark.django_db

OPERATIONS = {
    "/api/v1/groups/{group}/approved/latest": "/api/v1/groups/fraud-detector/approved/latest",
    "/api/v1/packages/check": "/api/v1/packages/check?arn={arn}",
    "/api/v1/groups/": "/api/v1/groups/",
    "/api/v1/groups/{group}/packages/": "/api/v1/groups/fraud-detector/packages/",
    "/api/v1/packages/{group}/{version}": "/api/v1/packages/fraud-detector/1",
}


def test_the_served_document_is_valid_openapi_3(pipeline: Bearer) -> None:
    response = pipeline.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    validate(doc)
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == set(OPERATIONS)
    schemes = doc["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}  # bearer, and the session cookie
    for template, item in doc["paths"].items():
        assert set(item) == {"get"}, template
        assert {"200", "400", "401", "403", "404", "429"} <= set(item["get"]["responses"]), template


@pytest.fixture
def arn(personas: dict[str, Any]) -> str:
    package = package_with_metrics(ModelPackageGroupFactory(name="fraud-detector"), version=1)
    approve_via_dashboard(package, personas)
    return package.arn


@pytest.mark.parametrize("template", list(OPERATIONS))
def test_every_operation_answers_as_documented(template: str, arn: str, openapi: dict[str, Any]) -> None:
    url = OPERATIONS[template].format(arn=arn)
    ok = bearer("full")
    assert matches_schema(openapi, template, ok.get(url)) is not None
    unauthenticated = Client().get(url)
    assert matches_schema(openapi, template, unauthenticated)["error"] == "unauthenticated"
    scopes = ("read:registry",) if "approved" in template or "check" in template else ("read:gate",)
    forbidden = bearer("narrow", scopes=scopes).get(url)
    assert matches_schema(openapi, template, forbidden)["error"] == "insufficient_scope"


@pytest.mark.parametrize(
    ("template", "url"),
    [
        ("/api/v1/groups/{group}/approved/latest", "/api/v1/groups/bad_name/approved/latest"),
        ("/api/v1/packages/check", "/api/v1/packages/check?arn=arn:aws:s3:::bucket"),
        ("/api/v1/groups/", "/api/v1/groups/?limit=0"),
        ("/api/v1/groups/{group}/packages/", "/api/v1/groups/fraud-detector/packages/?since=yesterday"),
        ("/api/v1/packages/{group}/{version}", "/api/v1/packages/fraud-detector/0"),
    ],
)
def test_bad_input_is_a_documented_400_naming_the_field(
    template: str, url: str, arn: str, openapi: dict[str, Any]
) -> None:
    body = matches_schema(openapi, template, bearer().get(url))
    assert body["error"] == "invalid_parameter" and ":" in body["detail"]


def test_the_rate_limit_answer_is_documented(settings: Any, arn: str, openapi: dict[str, Any]) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    caller = bearer()
    ModelPackageFactory(group=ModelPackageGroupFactory(name="other"))
    assert caller.get("/api/v1/groups/").status_code == 200
    response = caller.get("/api/v1/groups/")
    assert matches_schema(openapi, "/api/v1/groups/", response)["error"] == "rate_limited"
