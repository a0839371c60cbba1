"""Token auth: missing, wrong, malformed, expired, revoked, out of scope; sessions; storage; last use."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from registry_app.gate.tokens import LAST_USED_RESOLUTION, token_authenticate, token_revoke
from registry_app.models import ApiToken, AuditLogEntry
from tests.api.conftest import Bearer, bearer

pytestmark = pytest.mark.django_db

GROUPS = "/api/v1/groups/"
LATEST = "/api/v1/groups/fraud-detector/approved/latest"


def error_of(response: Any) -> str:
    assert response["Content-Type"].startswith("application/json")
    return str(response.json()["error"])


def test_no_credentials_is_401_json_with_a_bearer_challenge() -> None:
    response = Client().get(GROUPS)
    assert response.status_code == 401 and error_of(response) == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert AuditLogEntry.objects.filter(action="api.call").count() == 0


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer gov_abcdefghij_" + "A" * 43, "invalid_token"),  # well-formed, unknown
        ("Bearer nonsense", "invalid_token"),
        ("Bearer ", "invalid_authorization"),
        ("Basic dXNlcjpwYXNz", "invalid_authorization"),
        ("Bearer gov_\u00e9\u00e9\u00e9", "invalid_token"),
        ("Bearer " + "x" * 10000, "invalid_token"),
    ],
)
def test_a_wrong_or_malformed_token_is_401(header: str, code: str) -> None:
    response = Client(HTTP_AUTHORIZATION=header).get(GROUPS)
    assert response.status_code == 401 and error_of(response) == code


def test_the_right_prefix_with_a_wrong_secret_is_refused(pipeline: Bearer) -> None:
    forged = pipeline.raw[:-4] + ("AAAA" if not pipeline.raw.endswith("AAAA") else "BBBB")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {forged}").get(GROUPS)
    assert response.status_code == 401 and error_of(response) == "invalid_token"


def test_a_wrong_token_never_falls_back_to_the_session(personas: dict[str, Any]) -> None:
    client = Client(HTTP_AUTHORIZATION="Bearer nonsense")
    client.force_login(personas["viewer"])
    assert client.get(GROUPS).status_code == 401


def test_an_expired_token_is_401() -> None:
    caller = bearer(expires_days=1)
    ApiToken.objects.filter(pk=caller.token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = caller.get(GROUPS)
    assert response.status_code == 401 and error_of(response) == "token_expired"


def test_a_revoked_token_is_401_at_once(pipeline: Bearer, personas: dict[str, Any]) -> None:
    assert pipeline.get(GROUPS).status_code == 200
    assert token_revoke(pipeline.token, actor=personas["staff"])
    assert not token_revoke(pipeline.token, actor=personas["staff"])  # twice is harmless
    response = pipeline.get(GROUPS)
    assert response.status_code == 401 and error_of(response) == "token_revoked"
    entry = AuditLogEntry.objects.get(action="api_token.revoked")
    assert entry.actor_name == "operator" and entry.after["name"] == "deploy-pipeline"


def test_a_deactivated_service_account_is_401(pipeline: Bearer) -> None:
    pipeline.token.user.is_active = False
    pipeline.token.user.save()
    response = pipeline.get(GROUPS)
    assert response.status_code == 401 and error_of(response) == "account_disabled"


@pytest.mark.parametrize(
    ("scopes", "path", "status"),
    [
        (("read:registry",), LATEST, 403),
        (("read:registry",), "/api/v1/packages/check?arn=x", 403),
        (("read:gate",), GROUPS, 403),
        (("read:gate",), "/api/v1/groups/fraud-detector/packages/", 403),
        (("read:gate",), "/api/v1/packages/fraud-detector/1", 403),
        (("read:gate",), LATEST, 404),  # in scope: no such group
        (("read:registry",), GROUPS, 200),
    ],
)
def test_scopes(scopes: tuple[str, ...], path: str, status: int) -> None:
    response = bearer(scopes=scopes).get(path)
    assert response.status_code == status
    if status == 403:
        assert error_of(response) == "insufficient_scope"


def test_a_signed_in_person_may_read_and_is_named_in_the_audit(personas: dict[str, Any]) -> None:
    client = Client()
    client.force_login(personas["viewer"])
    assert client.get(GROUPS).status_code == 200
    entry = AuditLogEntry.objects.get(action="api.call")
    assert entry.actor_name == "viewer" and entry.after["token"] is None and entry.via == "web"


def test_an_inactive_person_is_401(personas: dict[str, Any]) -> None:
    client = Client()
    client.force_login(personas["viewer"])
    personas["viewer"].is_active = False
    personas["viewer"].save()
    assert client.get(GROUPS).status_code == 401


def test_only_a_hash_is_stored(pipeline: Bearer) -> None:
    row = ApiToken.objects.get(pk=pipeline.token.pk)
    assert pipeline.raw.startswith(f"gov_{row.prefix}_") and len(pipeline.raw) > 50
    assert row.digest != pipeline.raw and len(row.digest) == 64
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")
        assert not any(pipeline.raw in str(v) or pipeline.raw[15:] in str(v) for r in cursor.fetchall() for v in r)
    assert row.user.username == "svc-deploy-pipeline" and not row.user.has_usable_password()


def test_last_use_is_written_at_most_once_a_minute(pipeline: Bearer, django_assert_num_queries: Any) -> None:
    now = timezone.now()
    with django_assert_num_queries(2):  # lookup + the first UPDATE
        token_authenticate(pipeline.raw, now=now)
    with django_assert_num_queries(1):  # lookup only
        token_authenticate(pipeline.raw, now=now + dt.timedelta(seconds=30))
    with django_assert_num_queries(2):
        token_authenticate(pipeline.raw, now=now + LAST_USED_RESOLUTION + dt.timedelta(seconds=1))
    assert ApiToken.objects.get(pk=pipeline.token.pk).last_used_at == now + LAST_USED_RESOLUTION + dt.timedelta(
        seconds=1
    )


def test_the_openapi_document_needs_credentials_too(pipeline: Bearer) -> None:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 401 and error_of(response) == "unauthenticated"
    assert Client(HTTP_AUTHORIZATION="Bearer nope").get("/api/v1/openapi.json").status_code == 401
    assert pipeline.get("/api/v1/openapi.json").status_code == 200
