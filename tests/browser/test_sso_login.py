"""Single sign-on in a real browser: the login page's "Sign in with ..." button, the fake provider's
picker page (real HTTP on loopback), back to the dashboard with the IdP-mapped role in the top bar."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from registry_app.devtools.fake_oidc import FakeClient, FakeOIDCProvider, FakeUser
from registry_app.models import AuditLogEntry
from registry_app.sso.discovery import clear_discovery_cache

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def provider(live_server: Any, settings: Any) -> Iterator[FakeOIDCProvider]:
    users = [
        FakeUser("sso-compliance", name="Cody Compliance", groups=["idp-compliance"]),
        FakeUser("sso-mlead", name="Sam Mlead", groups=["idp-ml-leads"]),
    ]
    with FakeOIDCProvider(
        clients=[FakeClient("browser-test", "browser-secret", (f"{live_server.url}/oidc/callback/",))], users=users
    ) as running:
        settings.OIDC_ENABLED = True
        settings.OIDC_OP_ISSUER = running.issuer
        settings.OIDC_RP_CLIENT_ID = "browser-test"
        settings.OIDC_RP_CLIENT_SECRET = "browser-secret"  # noqa: S105 - the fake provider's
        settings.OIDC_PROVIDER_NAME = "Acme SSO"
        settings.OIDC_ROLE_MAP = {"idp-ml-leads": ("ml-lead",), "idp-compliance": ("compliance",)}
        settings.LOCAL_LOGIN_ENABLED = False
        clear_discovery_cache()
        yield running
        clear_discovery_cache()


def test_sign_in_with_sso_lands_on_the_dashboard_with_the_mapped_role(
    live_server: Any, browser: Any, provider: FakeOIDCProvider
) -> None:
    context = browser.new_context()
    page = context.new_page()
    csp_violations: list[str] = []
    page.on(
        "console",
        lambda message: csp_violations.append(message.text) if "Content Security Policy" in message.text else None,
    )

    page.goto(f"{live_server.url}/queue/")
    assert "/accounts/login/" in page.url
    assert page.locator("#id_password").count() == 0  # local logins are off
    page.get_by_role("link", name="Sign in with Acme SSO").click()

    # The provider's own page: pick the person.
    page.wait_for_url(re.compile(re.escape(provider.issuer) + r"/authorize\?.*"))
    page.get_by_role("button", name="sso-compliance").click()

    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/queue/"))
    top_bar = page.locator("header.topbar")
    assert "sso-compliance" in top_bar.inner_text()
    assert [" ".join(text.split()) for text in page.locator(".nav-role").all_inner_texts()] == ["compliance 0"]
    assert csp_violations == []

    user = get_user_model().objects.get(username="sso-compliance")
    assert sorted(user.groups.values_list("name", flat=True)) == ["compliance"]
    assert list(AuditLogEntry.objects.filter(actor=user).values_list("action", flat=True).order_by("seq")) == [
        "sso.login",
        "login",
    ]
    context.close()
