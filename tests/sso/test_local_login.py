"""The local username/password login next to SSO, and switched off (LOCAL_LOGIN_ENABLED=false)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from registry_app.devtools.fake_oidc import FakeOIDCProvider
from tests.sso.conftest import logged_in_username, sso_login

pytestmark = pytest.mark.django_db

PASSWORD = "local-pw-123!"


@pytest.fixture
def local_user() -> Any:
    return get_user_model().objects.create_user("dana", "dana@acme.example", PASSWORD, is_staff=True)


def test_login_page_offers_both_when_sso_is_configured(client: Client, sso_settings: Any) -> None:
    page = client.get("/accounts/login/?next=/queue/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Sign in with Acme SSO" in html and 'href="/oidc/authenticate/?next=/queue/"' in html
    assert 'name="password"' in html


def test_local_login_still_works_with_sso_on(client: Client, sso_settings: Any, local_user: Any) -> None:
    response = client.post("/accounts/login/", {"username": "dana", "password": PASSWORD})
    assert response.status_code == 302 and logged_in_username(client) == "dana"


def test_local_login_switched_off_hides_the_form_and_refuses_posts(
    client: Client, sso_settings: Any, local_user: Any
) -> None:
    sso_settings.LOCAL_LOGIN_ENABLED = False
    page = client.get("/accounts/login/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Sign in with Acme SSO" in html and 'name="password"' not in html

    refused = client.post("/accounts/login/", {"username": "dana", "password": PASSWORD})
    assert refused.status_code == 403 and b"switched off" in refused.content
    assert logged_in_username(client) is None
    # Every other password path is closed too: the admin's login form and authenticate() itself.
    admin = client.post("/admin/login/?next=/admin/", {"username": "dana", "password": PASSWORD})
    assert admin.status_code == 200 and logged_in_username(client) is None
    assert client.login(username="dana", password=PASSWORD) is False


def test_sso_works_with_local_login_switched_off(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_settings.LOCAL_LOGIN_ENABLED = False
    sso_login(client, oidc_provider, "alice")
    assert logged_in_username(client) == "alice"


def test_sso_accounts_cannot_use_the_password_form(
    client: Client, oidc_provider: FakeOIDCProvider, sso_settings: Any
) -> None:
    sso_login(client, oidc_provider, "alice")
    client.logout()
    for password in ("", "!", get_user_model().objects.get(username="alice").password):
        client.post("/accounts/login/", {"username": "alice", "password": password})
        assert logged_in_username(client) is None
