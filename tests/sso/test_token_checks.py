"""ID tokens that must be refused: expired, for another client, from another issuer, with another
nonce, tampered, signed by an unknown key or not signed; and a client secret the provider refuses.
Each one is issued by the fake provider over HTTP, as a misbehaving or hostile IdP would."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client

from registry_app.devtools.fake_oidc import TOKEN_FAULTS, FakeOIDCProvider
from registry_app.models import AuditLogEntry
from tests.sso.conftest import logged_in_username, sso_login

pytestmark = pytest.mark.django_db

REASONS = {
    "expired": "has expired",
    "wrong_audience": "another client (aud)",
    "wrong_issuer": "another issuer (iss)",
    "wrong_nonce": "nonce does not match",
    "tampered": "signature does not verify",
    "foreign_key": "signature does not verify",
    "unsigned": "signed with 'none'",
}


def _messages(response: Any) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


def test_every_fault_has_an_expected_reason() -> None:
    assert set(REASONS) == TOKEN_FAULTS


@pytest.mark.parametrize("fault", sorted(REASONS))
def test_bad_id_token_is_refused(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any, fault: str
) -> None:
    oidc_provider.faults = {fault}
    result = sso_login(client, oidc_provider, "bob")  # bob is in idp-admins: a forged login would be staff

    assert result.response.status_code == 302 and result.response["Location"] == "/accounts/login/"
    assert logged_in_username(client) is None
    assert not get_user_model().objects.exists()
    assert not AuditLogEntry.objects.exists()
    assert REASONS[fault] in _messages(result.response)


def test_a_good_login_after_a_refused_one(client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any) -> None:
    """The refusals above are about the token, not a broken setup: the same provider, healthy, works."""
    oidc_provider.faults = {"expired"}
    sso_login(client, oidc_provider, "bob")
    oidc_provider.faults = set()
    sso_login(client, oidc_provider, "bob")
    assert logged_in_username(client) == "bob"


def test_clock_skew_leeway_is_applied(client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any) -> None:
    oidc_provider.faults = {"expired"}  # expired 30 minutes ago
    sso_settings.OIDC_CLOCK_SKEW_SECONDS = 3600
    sso_login(client, oidc_provider, "bob")
    assert logged_in_username(client) == "bob"


def test_wrong_client_secret_is_refused_by_the_provider(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_settings.OIDC_RP_CLIENT_SECRET = "not-the-secret"
    result = sso_login(client, oidc_provider, "alice")
    assert logged_in_username(client) is None
    assert "HTTP 401" in _messages(result.response)


def test_missing_pkce_verifier_is_refused_by_the_provider(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    """The code is bound to the PKCE challenge: a code without the session's verifier is worthless."""
    start = client.get("/oidc/authenticate/")
    session = client.session
    for entry in session["oidc_states"].values():
        entry["code_verifier"] = "x" * 64  # not the verifier behind the challenge
    session.save()
    from urllib.parse import parse_qs, urlsplit

    import requests

    params = {k: v[0] for k, v in parse_qs(urlsplit(start["Location"]).query).items()}
    answer = requests.post(
        oidc_provider.issuer + "/authorize", data={**params, "user": "alice"}, timeout=10, allow_redirects=False
    )
    response = client.get(answer.headers["Location"].removeprefix("http://testserver"))
    assert logged_in_username(client) is None
    assert "HTTP 400" in _messages(response)


def test_refused_sso_logins_count_for_login_throttling(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    """With django-axes on, a good SSO login works and a refused one is recorded as a failure."""
    from axes.models import AccessAttempt

    sso_settings.AXES_ENABLED = True
    sso_login(client, oidc_provider, "alice")
    assert logged_in_username(client) == "alice"
    client.logout()
    oidc_provider.faults = {"wrong_audience"}
    sso_login(client, oidc_provider, "alice")
    assert logged_in_username(client) is None
    assert list(AccessAttempt.objects.values_list("path_info", "failures_since_start")) == [("/oidc/callback/", 1)]
