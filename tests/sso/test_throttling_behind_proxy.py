"""Login throttling behind a reverse proxy: every request reaches the app from the proxy's address,
with the client's in X-Forwarded-For (as nginx's $proxy_add_x_forwarded_for appends it).

One attacker cannot lock another user out: the lockout is per username *and* client address, the
address is the one the proxy saw (a forged X-Forwarded-For entry is never read), and the per-address
ceiling stops password spraying from the attacker's own address only, leaving single sign-on open.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from registry_app.sso import throttling
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-test-123!"  # tests.factories.UserFactory's
PROXY = "10.0.0.2"  # nginx, in front of the app
VICTIM = "203.0.113.10"
ATTACKER = "198.51.100.66"


@pytest.fixture(autouse=True)
def behind_one_proxy():  # type: ignore[no-untyped-def]
    with override_settings(AXES_ENABLED=True, TRUSTED_PROXY_COUNT=1, AXES_ADDRESS_FAILURE_LIMIT=30):
        yield


def through_proxy(client_address: str, forged: str = "") -> Client:
    """A browser at ``client_address`` behind the proxy; ``forged`` is what it put in X-Forwarded-For itself."""
    chain = f"{forged}, {client_address}" if forged else client_address
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=chain)


def login(client: Client, username: str, password: str) -> Any:
    return client.post(reverse("login"), {"username": username, "password": password})


def test_an_attacker_cannot_lock_another_user_out() -> None:
    UserFactory(username="victim")
    attacker = through_proxy(ATTACKER)
    answers = [login(attacker, "victim", "wrong-password").status_code for _ in range(8)]
    assert answers == [200, 200, 200, 200, 429, 429, 429, 429]
    assert login(attacker, "victim", PASSWORD).status_code == 429  # locked: for the attacker's address

    victim = through_proxy(VICTIM)
    response = login(victim, "victim", PASSWORD)
    assert response.status_code == 302 and response["Location"] == settings.LOGIN_REDIRECT_URL
    # Both were recorded under their own address, not the proxy's.
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_a_forged_forwarded_for_does_not_borrow_the_victims_address() -> None:
    UserFactory(username="victim")
    attacker = through_proxy(ATTACKER, forged=VICTIM)  # "X-Forwarded-For: <victim>" sent by the attacker
    for _ in range(6):
        login(attacker, "victim", "wrong-password")
    assert login(through_proxy(VICTIM), "victim", PASSWORD).status_code == 302


def test_password_spraying_locks_the_attackers_address_only() -> None:
    for n in range(30):
        UserFactory(username=f"user{n}")
    UserFactory(username="alice")
    attacker = through_proxy(ATTACKER)
    answers = [login(attacker, f"user{n}", "wrong-password").status_code for n in range(30)]
    assert answers[:29] == [200] * 29  # never 5 failures for one username
    assert answers[29] == 429  # the 30th failure from this address reaches the ceiling
    spraying = login(attacker, "alice", PASSWORD)  # even a right password, from there
    assert spraying.status_code == 429
    html = spraying.content.decode()
    assert "Password logins from this address are locked after 30 failed attempts" in html
    assert "Try again in 15 min 00 s" in html
    # Everyone else, behind the same proxy, logs in.
    assert login(through_proxy(VICTIM), "alice", PASSWORD).status_code == 302
    assert login(through_proxy(VICTIM), "user3", PASSWORD).status_code == 302


def test_the_lockout_page_offers_single_sign_on(settings: Any) -> None:
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Acme SSO"
    UserFactory(username="victim")
    attacker = through_proxy(ATTACKER)
    for _ in range(4):
        login(attacker, "victim", "wrong-password")
    html = login(attacker, "victim", "wrong-password").content.decode()
    assert "Logging in as <strong>victim</strong> from this address is locked after 5 failed attempts" in html
    assert "Single sign-on is not locked" in html
    assert f'href="{reverse("oidc_authentication_init")}"' in html and "Sign in with Acme SSO" in html


def test_an_unconfigured_proxy_skips_the_address_ceiling_with_a_warning(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """TRUSTED_PROXY_COUNT left at 0 behind a proxy: every client shares the proxy's address, so the
    ceiling would lock everyone out of password logins; the per-account rule still applies."""
    settings.TRUSTED_PROXY_COUNT = 0
    settings.AXES_ADDRESS_FAILURE_LIMIT = 3
    throttling._warned_unknown_proxy = False
    for n in range(4):
        UserFactory(username=f"user{n}")
    with caplog.at_level(logging.WARNING, logger="registry_app.sso.throttling"):
        for n in range(4):
            assert login(through_proxy(ATTACKER), f"user{n}", "wrong-password").status_code == 200
    assert login(through_proxy(VICTIM), "user0", PASSWORD).status_code == 302
    assert any("set TRUSTED_PROXY_COUNT" in record.getMessage() for record in caplog.records)


def test_without_a_proxy_the_ceiling_applies_to_the_peer_address(settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    settings.AXES_ADDRESS_FAILURE_LIMIT = 3
    for n in range(3):
        UserFactory(username=f"user{n}")
    direct = Client(REMOTE_ADDR=ATTACKER)
    assert [login(direct, f"user{n}", "wrong-password").status_code for n in range(3)] == [200, 200, 429]
    assert login(Client(REMOTE_ADDR=VICTIM), "user1", PASSWORD).status_code == 302


def test_the_ceiling_can_be_switched_off(settings: Any) -> None:
    settings.AXES_ADDRESS_FAILURE_LIMIT = 0
    for n in range(40):
        UserFactory(username=f"user{n}")
    attacker = through_proxy(ATTACKER)
    assert {login(attacker, f"user{n}", "wrong-password").status_code for n in range(40)} == {200}
