"""The fake provider is a real OpenID provider: it refuses what a real one refuses, so the tests
that pass through it mean something."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from registry_app.devtools.fake_oidc import FakeClient, FakeOIDCProvider, FakeUser

REDIRECT = "http://testserver/cb/"
VERIFIER = "v" * 64


@pytest.fixture
def provider() -> Iterator[FakeOIDCProvider]:
    with FakeOIDCProvider(
        clients=[FakeClient("c1", "s1", (REDIRECT,))], users=[FakeUser("ann", groups=["g"])], auto_approve="ann"
    ) as running:
        yield running


def _authorize(provider: FakeOIDCProvider, **overrides: str) -> requests.Response:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
    params = {
        "response_type": "code",
        "client_id": "c1",
        "redirect_uri": REDIRECT,
        "scope": "openid email",
        "state": "st",
        "nonce": "n1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return requests.get(provider.issuer + "/authorize", params=params, timeout=10, allow_redirects=False)


def _code(response: requests.Response) -> str:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def _token(provider: FakeOIDCProvider, code: str, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": "c1",
        "client_secret": "s1",
        "code_verifier": VERIFIER,
        **overrides,
    }
    return requests.post(provider.issuer + "/token", data=form, timeout=10)


def test_discovery_and_a_verifiable_id_token(provider: FakeOIDCProvider) -> None:
    config = requests.get(provider.issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert config["issuer"] == provider.issuer and config["jwks_uri"] == provider.issuer + "/jwks"
    tokens = _token(provider, _code(_authorize(provider))).json()
    key = jwt.PyJWKClient(config["jwks_uri"]).get_signing_key_from_jwt(tokens["id_token"])
    claims = jwt.decode(tokens["id_token"], key, algorithms=["RS256"], audience="c1", issuer=provider.issuer)
    assert (claims["nonce"], claims["groups"], claims["preferred_username"]) == ("n1", ["g"], "ann")
    userinfo = requests.get(
        provider.issuer + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10
    )
    assert userinfo.json()["sub"] == claims["sub"]


def test_client_secret_basic_is_accepted(provider: FakeOIDCProvider) -> None:
    code = _code(_authorize(provider))
    basic = base64.b64encode(b"c1:s1").decode()
    response = requests.post(
        provider.issuer + "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert response.status_code == 200 and "id_token" in response.json()


def test_unregistered_redirect_uri_is_never_redirected_to(provider: FakeOIDCProvider) -> None:
    response = _authorize(provider, redirect_uri="http://evil.example/cb/")
    assert response.status_code == 400 and "Location" not in response.headers
    assert _authorize(provider, client_id="nope").status_code == 400


def test_request_errors_go_back_to_the_client(provider: FakeOIDCProvider) -> None:
    for overrides, error in (
        ({"scope": "email"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ):
        response = _authorize(provider, **overrides)
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        assert query["error"] == [error] and query["state"] == ["st"]


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"redirect_uri": "http://testserver/other/"}, 400, "invalid_grant"),
        ({"code_verifier": "w" * 64}, 400, "invalid_grant"),
        ({"code_verifier": ""}, 400, "invalid_grant"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
def test_token_endpoint_refusals(
    provider: FakeOIDCProvider, overrides: dict[str, str], status: int, error: str
) -> None:
    response = _token(provider, _code(_authorize(provider)), **overrides)
    assert (response.status_code, response.json()["error"]) == (status, error)


def test_codes_are_single_use(provider: FakeOIDCProvider) -> None:
    code = _code(_authorize(provider))
    assert _token(provider, code).status_code == 200
    assert _token(provider, code).json()["error"] == "invalid_grant"


def test_userinfo_needs_a_token_it_issued(provider: FakeOIDCProvider) -> None:
    for headers in ({}, {"Authorization": "Bearer made-up"}, {"Authorization": "Basic abc"}):
        response = requests.get(provider.issuer + "/userinfo", headers=headers, timeout=10)
        assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_picker_form_lists_users_without_auto_approve(provider: FakeOIDCProvider) -> None:
    provider.auto_approve = None
    page = _authorize(provider)
    assert page.status_code == 200 and 'name="user" value="ann"' in page.text
    hinted = _authorize(provider, login_hint="ann")
    assert hinted.status_code == 302


def test_binds_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeOIDCProvider(clients=[], users=[], host="0.0.0.0")  # noqa: S104 - the refusal is the point


def test_command_line_options_build_and_serve_a_provider() -> None:
    """What ``manage.py fake_oidc_provider`` and ``python -m registry_app.devtools.fake_oidc`` run."""
    import argparse
    import io
    import threading

    from registry_app.devtools import fake_oidc

    parser = argparse.ArgumentParser()
    fake_oidc.add_arguments(parser)
    options = parser.parse_args(["--port", "0", "--user", "zed:zed@x.example:g1,g2", "--redirect-uri", REDIRECT])
    provider = fake_oidc.provider_from_options(options)
    assert provider.users["zed"].groups == ["g1", "g2"] and provider.clients["governance-dashboard"].redirect_uris == (
        REDIRECT,
    )
    out, stop = io.StringIO(), threading.Event()
    server = threading.Thread(target=fake_oidc.serve, args=(provider, out, stop))
    server.start()
    try:
        for _ in range(100):
            if "issuer" in out.getvalue():
                break
            threading.Event().wait(0.05)
        config = requests.get(provider.issuer + "/.well-known/openid-configuration", timeout=10).json()
        assert config["issuer"] == provider.issuer and f"issuer {provider.issuer}" in out.getvalue()
    finally:
        stop.set()
        server.join(timeout=10)
    assert not server.is_alive()
    defaults = fake_oidc.provider_from_options(parser.parse_args(["--port", "0"]))
    assert sorted(defaults.users) == sorted(u.username for u in fake_oidc.DEMO_USERS)
    defaults.set_groups("sso-mlead", [])
    assert fake_oidc.DEMO_USERS[0].groups == ["idp-ml-leads", "idp-everyone"]  # the defaults are copies
