"""Password reset is rate-limited per client address (429) and per e-mail address (no more mail, and
the same answer as when one is sent, so nothing tells whether an account exists)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

RESET = "/accounts/password_reset/"
DONE = "/accounts/password_reset/done/"


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    cache.clear()


def ask(email: str, *, ip: str = "203.0.113.10", **extra: str) -> Any:
    return Client(REMOTE_ADDR=ip, **extra).post(RESET, {"email": email})


def test_the_view_is_ours() -> None:
    assert reverse("password_reset") == RESET
    assert Client().get(RESET).status_code == 200


def test_each_account_gets_at_most_three_mails_an_hour(settings: Any) -> None:
    UserFactory(username="alice")
    answers = [ask("alice@example.com", ip=f"203.0.113.{n}") for n in range(5)]  # from five addresses
    assert {(a.status_code, a["Location"]) for a in answers} == {(302, DONE)}  # all look the same
    assert len(mail.outbox) == settings.PASSWORD_RESET_ACCOUNT_LIMIT == 3
    assert ask("ALICE@example.com ", ip="203.0.113.99").status_code == 302  # the same account, spelt otherwise
    assert len(mail.outbox) == 3
    UserFactory(username="bob")
    ask("bob@example.com", ip="203.0.113.1")
    assert len(mail.outbox) == 4  # another account is not affected


def test_an_address_gets_ten_requests_an_hour(settings: Any) -> None:
    for n in range(settings.PASSWORD_RESET_ADDRESS_LIMIT):
        assert ask(f"nobody{n}@example.com").status_code == 302
    refused = ask("nobody-more@example.com")
    assert refused.status_code == 429
    assert "Too many password reset requests" in refused.content.decode()
    assert ask("nobody-more@example.com", ip="203.0.113.77").status_code == 302  # another address is not


def test_behind_a_proxy_the_client_address_counts(settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    settings.PASSWORD_RESET_ADDRESS_LIMIT = 2
    for _ in range(2):
        ask("x@example.com", ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.66")
    assert ask("x@example.com", ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.66").status_code == 429
    assert ask("y@example.com", ip="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.10").status_code == 302


def test_a_cache_outage_does_not_refuse_everyone(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis down")

    monkeypatch.setattr(cache, "add", down)
    UserFactory(username="alice")
    assert ask("alice@example.com").status_code == 302
    assert len(mail.outbox) == 1


def test_no_reset_without_local_logins(settings: Any) -> None:
    settings.LOCAL_LOGIN_ENABLED = False
    assert Client().get(RESET).status_code == 404
    assert ask("alice@example.com").status_code == 404
