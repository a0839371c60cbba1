"""``manage.py create_api_token`` (printed once, audited, rotation) and revoking in the admin."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from registry_app.models import ApiToken, AuditLogEntry
from tests.personas import make_user

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_the_token_once_and_it_works() -> None:
    output = run("github-deploy", "--expires-days", "30", "--scope", "read:gate")
    raw = next(line for line in output.splitlines() if line.startswith("gov_"))
    token = ApiToken.objects.get(name="github-deploy")
    assert token.scopes == ["read:gate"] and token.expires_at is not None
    assert "svc-github-deploy" in output and "not shown again" in output
    assert raw not in str(list(ApiToken.objects.values_list()))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/groups/x/approved/latest").status_code == 404  # authenticated, in scope
    assert client.get("/api/v1/groups/").status_code == 403  # read:registry not granted
    entry = AuditLogEntry.objects.get(action="api_token.created")
    assert entry.via == "command" and entry.after["scopes"] == ["read:gate"] and raw not in str(entry.after)


def test_token_only_and_default_scopes() -> None:
    raw = run("ci", "--token-only").strip()
    assert raw.startswith("gov_") and "\n" not in raw
    assert ApiToken.objects.get(name="ci").scopes == ["read:gate", "read:registry"]


def test_a_live_name_needs_replace_which_rotates() -> None:
    first = run("pipe", "--token-only").strip()
    with pytest.raises(CommandError, match="--replace"):
        run("pipe")
    second = run("pipe", "--replace", "--token-only").strip()
    assert Client(HTTP_AUTHORIZATION=f"Bearer {first}").get("/api/v1/groups/").json()["error"] == "token_revoked"
    assert Client(HTTP_AUTHORIZATION=f"Bearer {second}").get("/api/v1/groups/").status_code == 200
    assert ApiToken.objects.filter(name="pipe").count() == 2
    assert len({t.user_id for t in ApiToken.objects.filter(name="pipe")}) == 1  # one service account


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("bad name",), "token name"),
        (("-x",), None),
        (("ok", "--expires-days", "0"), "between 1"),
    ],
)
def test_bad_arguments_are_refused(args: tuple[str, ...], fragment: str | None) -> None:
    with pytest.raises((CommandError, SystemExit)) as caught:
        run(*args)
    if fragment:
        assert fragment in str(caught.value)
    assert not ApiToken.objects.exists()


def test_a_persons_account_is_never_a_service_account() -> None:
    make_user("svc-mallory")  # has a password: a person
    with pytest.raises(CommandError, match="person's account"):
        run("mallory")


def test_staff_revoke_tokens_in_the_admin(personas: dict[str, Any]) -> None:
    raw = run("to-revoke", "--token-only").strip()
    token = ApiToken.objects.get(name="to-revoke")
    admin = make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/registry_app/apitoken/")
    assert (
        listing.status_code == 200 and b"to-revoke" in listing.content and token.digest.encode() not in listing.content
    )
    assert client.get("/admin/registry_app/apitoken/add/").status_code == 403
    page = client.get(f"/admin/registry_app/apitoken/{token.pk}/change/")
    assert page.status_code == 200 and token.digest.encode() not in page.content
    response = client.post(
        "/admin/registry_app/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert response.status_code == 200 and b"Revoked 1 token" in response.content
    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/groups/").json()["error"] == "token_revoked"
    entry = AuditLogEntry.objects.get(action="api_token.revoked")
    assert entry.actor_name == "root" and entry.via == "web"
    # staff without the permission see the list but cannot revoke
    viewer_staff = personas["staff"]
    client.force_login(viewer_staff)
    assert client.get("/admin/registry_app/apitoken/").status_code == 403
