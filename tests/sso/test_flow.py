"""The whole authorization-code flow against the fake provider over real HTTP: accounts matched by
``sub``, roles from the IdP's groups re-evaluated at each login, audit entries, discovery."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import Client

from registry_app.audit.chain import verify_audit_chain
from registry_app.devtools.fake_oidc import FakeOIDCProvider
from registry_app.models import AuditLogEntry
from registry_app.permissions import user_roles
from registry_app.sso.services import sso_link
from tests.sso.conftest import logged_in_username, sso_login

pytestmark = pytest.mark.django_db

User = get_user_model()


def _roles(username: str) -> set[str]:
    return user_roles(User.objects.get(username=username))


def test_code_flow_creates_the_account_with_mapped_roles(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    result = sso_login(client, oidc_provider, "alice")

    assert result.response.status_code == 302
    assert result.response["Location"] == "/groups/"
    assert logged_in_username(client) == "alice"
    user = User.objects.get(username="alice")
    assert (user.email, user.first_name, user.last_name) == ("alice@acme.example", "Alice", "Archer")
    assert not user.has_usable_password() and user.password == sso_link(
        oidc_provider.issuer, oidc_provider.users["alice"].sub
    )
    assert _roles("alice") == {"ml-lead"}  # idp-everyone is not in the map
    assert not user.is_staff and not user.is_superuser
    # The request carried PKCE and a nonce; every provider endpoint was used once, discovery too.
    assert "code_challenge=" in result.authorize_url and "nonce=" in result.authorize_url
    assert {
        path: oidc_provider.hits[path] for path in ("/.well-known/openid-configuration", "/token", "/jwks", "/userinfo")
    } == {
        "/.well-known/openid-configuration": 1,
        "/token": 1,
        "/jwks": 1,
        "/userinfo": 1,
    }
    # The dashboard itself now answers as alice.
    page = client.get("/groups/")
    assert page.status_code == 200 and b"alice" in page.content


def test_sso_login_is_audited_in_the_chain(client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any) -> None:
    sso_login(client, oidc_provider, "alice")

    entries = list(AuditLogEntry.objects.order_by("seq"))
    assert [(e.action, e.actor_name) for e in entries] == [
        ("role.granted", "sso:Acme SSO"),
        ("sso.login", "alice"),
        ("login", "alice"),
    ]
    assert entries[0].after == {"role": "ml-lead"} and entries[0].subject_repr == "alice"
    assert entries[1].after == {
        "issuer": oidc_provider.issuer,
        "subject": oidc_provider.users["alice"].sub,
        "idp_groups": ["idp-everyone", "idp-ml-leads"],
        "managed_roles": ["ml-lead"],
        "granted": ["ml-lead"],
        "revoked": [],
        "account_created": True,
    }
    assert all(e.via == "web" for e in entries)
    assert verify_audit_chain().ok


def test_next_url_is_kept_through_the_provider(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    result = sso_login(client, oidc_provider, "alice", next_url="/queue/")
    assert result.response["Location"] == "/queue/"


def test_roles_are_re_evaluated_at_each_login(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_login(client, oidc_provider, "alice")
    assert _roles("alice") == {"ml-lead"}
    # A role granted by hand and not named in the role map is the dashboard's own business.
    call_command("grant_role", "alice", "viewer")
    client.logout()

    oidc_provider.set_groups("alice", ["idp-fairness"])  # moved at the IdP
    sso_login(client, oidc_provider, "alice")
    assert _roles("alice") == {"fairness", "viewer"}
    revoked = AuditLogEntry.objects.filter(action="role.revoked").get()
    assert (revoked.before, revoked.actor_name) == ({"role": "ml-lead"}, "sso:Acme SSO")
    client.logout()

    oidc_provider.set_groups("alice", [])  # removed from every group
    sso_login(client, oidc_provider, "alice")
    assert _roles("alice") == {"viewer"}
    assert User.objects.filter(username__startswith="alice").count() == 1  # always the same account
    assert verify_audit_chain().ok


def test_a_managed_role_granted_by_hand_is_taken_back_at_the_next_login(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_login(client, oidc_provider, "alice")
    call_command("grant_role", "alice", "compliance")  # compliance is IdP-managed (idp-compliance)
    client.logout()
    sso_login(client, oidc_provider, "alice")
    assert _roles("alice") == {"ml-lead"}


def test_staff_follows_the_admin_group(client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any) -> None:
    sso_login(client, oidc_provider, "bob")
    bob = User.objects.get(username="bob")
    assert bob.is_staff and not bob.is_superuser and _roles("bob") == {"compliance"}
    assert client.get("/admin/").status_code == 200
    client.logout()

    oidc_provider.set_groups("bob", ["idp-compliance"])
    sso_login(client, oidc_provider, "bob")
    bob.refresh_from_db()
    assert not bob.is_staff
    staff_entries = AuditLogEntry.objects.filter(subject_repr="bob", action__startswith="role.", before__role="staff")
    assert staff_entries.count() == 1


def test_staff_is_left_alone_when_the_map_does_not_name_it(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_settings.OIDC_ROLE_MAP = {"idp-compliance": ("compliance",)}
    sso_login(client, oidc_provider, "bob")
    bob = User.objects.get(username="bob")
    assert not bob.is_staff
    bob.is_staff = True
    bob.save()
    client.logout()
    sso_login(client, oidc_provider, "bob")
    bob.refresh_from_db()
    assert bob.is_staff


def test_unknown_group_gives_no_role(client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any) -> None:
    sso_login(client, oidc_provider, "carol")
    assert logged_in_username(client) == "carol"
    assert _roles("carol") == set()
    assert not Group.objects.filter(name="idp-unknown").exists()


def test_no_role_map_logs_in_without_touching_roles(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_settings.OIDC_ROLE_MAP = {}
    sso_login(client, oidc_provider, "alice")
    call_command("grant_role", "alice", "ml-lead")
    client.logout()
    oidc_provider.set_groups("alice", [])
    sso_login(client, oidc_provider, "alice")
    assert _roles("alice") == {"ml-lead"}


def test_accounts_are_matched_by_sub_not_by_name_or_email(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    local = User.objects.create_user("alice", "alice@acme.example", "local-pw-123!")
    local.groups.add(Group.objects.create(name="compliance"))

    sso_login(client, oidc_provider, "alice")
    # Same username and email as a local account: a new account, never a takeover.
    assert logged_in_username(client) == "alice-2"
    assert _roles("alice") == {"compliance"} and _roles("alice-2") == {"ml-lead"}
    local.refresh_from_db()
    assert local.check_password("local-pw-123!")
    client.logout()

    oidc_provider.users["alice"].email = "alice.archer@acme.example"  # renamed at the IdP
    sso_login(client, oidc_provider, "alice")
    assert logged_in_username(client) == "alice-2"
    assert User.objects.get(username="alice-2").email == "alice.archer@acme.example"


def test_deactivated_account_cannot_sign_in(client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any) -> None:
    sso_login(client, oidc_provider, "alice")
    client.logout()
    User.objects.filter(username="alice").update(is_active=False)

    result = sso_login(client, oidc_provider, "alice")
    assert result.response["Location"] == "/accounts/login/"
    assert logged_in_username(client) is None
    assert "deactivated" in " ".join(str(m) for m in get_messages(result.response.wsgi_request))


def test_account_creation_can_be_switched_off(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_settings.OIDC_CREATE_USER = False
    result = sso_login(client, oidc_provider, "alice")
    assert result.response["Location"] == "/accounts/login/"
    assert logged_in_username(client) is None
    assert not User.objects.exists()


def test_explicit_endpoints_skip_discovery(client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any) -> None:
    base = oidc_provider.issuer
    sso_settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{base}/authorize"
    sso_settings.OIDC_OP_TOKEN_ENDPOINT = f"{base}/token"
    sso_settings.OIDC_OP_USER_ENDPOINT = f"{base}/userinfo"
    sso_settings.OIDC_OP_JWKS_ENDPOINT = f"{base}/jwks"
    sso_login(client, oidc_provider, "alice")
    assert logged_in_username(client) == "alice"
    assert oidc_provider.hits["/.well-known/openid-configuration"] == 0


def test_discovery_is_fetched_once_per_process(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_login(client, oidc_provider, "alice")
    client.logout()
    sso_login(client, oidc_provider, "bob")
    assert oidc_provider.hits["/.well-known/openid-configuration"] == 1
    assert oidc_provider.hits["/token"] == 2


def test_discovery_naming_another_issuer_is_refused(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_settings.OIDC_OP_ISSUER = oidc_provider.issuer + "/"  # trailing slash: the same issuer
    assert client.get("/oidc/authenticate/").status_code == 302
    sso_settings.OIDC_OP_ISSUER = oidc_provider.issuer.replace("127.0.0.1", "localhost")
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "cannot be reached" in " ".join(str(m) for m in get_messages(response.wsgi_request))


def test_replayed_callback_is_refused(client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any) -> None:
    result = sso_login(client, oidc_provider, "alice")
    client.logout()
    # The state was consumed (and the session flushed by the logout): a replay logs nobody in.
    replay = client.get(result.callback_url.removeprefix("http://testserver"))
    assert replay.status_code in (302, 400)
    assert logged_in_username(client) is None


def test_provider_error_answer_is_shown(client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any) -> None:
    start = client.get("/oidc/authenticate/")
    state = start["Location"].split("state=")[1].split("&")[0]
    response = client.get(f"/oidc/callback/?error=access_denied&state={state}")
    assert response["Location"] == "/accounts/login/"
    assert "access_denied" in " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert logged_in_username(client) is None


def test_sso_views_404_when_not_configured(client: Client, settings: Any) -> None:
    settings.OIDC_ENABLED = False
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    page = client.get("/accounts/login/")
    assert b"Sign in with" not in page.content and b'name="password"' in page.content


def test_sso_sessions_end_when_sso_is_switched_off(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_login(client, oidc_provider, "alice")
    assert client.get("/groups/").status_code == 200
    sso_settings.OIDC_ENABLED = False
    assert client.get("/groups/").status_code == 302
