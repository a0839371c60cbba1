"""A real fake OpenID provider on loopback, the settings that point the dashboard at it, and the
code flow driven through Django's test client (the provider is reached over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from registry_app.devtools.fake_oidc import FakeClient, FakeOIDCProvider, FakeUser
from registry_app.sso.discovery import clear_discovery_cache

CLIENT_ID = "governance-test"
CLIENT_SECRET = "test-client-secret-1"  # noqa: S105 - the fake provider's
CALLBACK = "http://testserver/oidc/callback/"
ROLE_MAP = {
    "idp-ml-leads": ("ml-lead",),
    "idp-fairness": ("fairness",),
    "idp-compliance": ("compliance",),
    "idp-admins": ("staff",),
}


def make_users() -> list[FakeUser]:
    return [
        FakeUser("alice", email="alice@acme.example", name="Alice Archer", groups=["idp-ml-leads", "idp-everyone"]),
        FakeUser("bob", email="bob@acme.example", name="Bob Baker", groups=["idp-compliance", "idp-admins"]),
        FakeUser("carol", email="carol@acme.example", name="Carol Chen", groups=["idp-unknown"]),
    ]


@pytest.fixture
def oidc_provider() -> Iterator[FakeOIDCProvider]:
    provider = FakeOIDCProvider(clients=[FakeClient(CLIENT_ID, CLIENT_SECRET, (CALLBACK,))], users=make_users())
    with provider:
        yield provider


@pytest.fixture
def sso_settings(settings: Any, oidc_provider: FakeOIDCProvider) -> Iterator[Any]:
    """SSO on, endpoints by discovery from the fake provider's issuer."""
    settings.OIDC_ENABLED = True
    settings.OIDC_OP_ISSUER = oidc_provider.issuer
    for name in ("OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT"):
        setattr(settings, name, "")
    settings.OIDC_OP_JWKS_ENDPOINT = ""
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_PROVIDER_NAME = "Acme SSO"
    settings.OIDC_ROLE_MAP = dict(ROLE_MAP)
    settings.OIDC_CREATE_USER = True
    clear_discovery_cache()
    yield settings
    clear_discovery_cache()


@dataclass
class FlowResult:
    response: Any  # the dashboard's answer to the callback
    authorize_url: str
    callback_url: str


def sso_login(client: Client, provider: FakeOIDCProvider, username: str, *, next_url: str = "") -> FlowResult:
    """Click "Sign in with ...", let the provider approve ``username`` (its picker form, over HTTP),
    and bring the code back to the dashboard's callback."""
    start = client.get("/oidc/authenticate/" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302, start
    authorize_url = start["Location"]
    assert authorize_url.startswith(provider.issuer + "/authorize?")
    params = {key: values[0] for key, values in parse_qs(urlsplit(authorize_url).query).items()}
    picker = requests.get(authorize_url, timeout=10, allow_redirects=False)
    assert picker.status_code == 200 and f'value="{username}"' in picker.text
    answer = requests.post(
        provider.issuer + "/authorize", data={**params, "user": username}, timeout=10, allow_redirects=False
    )
    assert answer.status_code == 302, answer.text
    callback_url = answer.headers["Location"]
    assert callback_url.startswith(CALLBACK)
    response = client.get(callback_url.removeprefix("http://testserver"))
    return FlowResult(response=response, authorize_url=authorize_url, callback_url=callback_url)


def logged_in_username(client: Client) -> str | None:
    from django.contrib.auth import get_user

    request = type("R", (), {"session": client.session})()
    user = get_user(request)  # type: ignore[arg-type]
    return user.get_username() if user.is_authenticated else None
