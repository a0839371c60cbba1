"""Login throttling (django-axes): a username is locked out from one address after 5 failures, with a
clear lockout page; other users and addresses are not affected; the lock lifts after the cool-off.

The global test settings keep axes off (Django's test client ``login()`` authenticates without a
request, which axes refuses), so these tests switch it on explicitly: the settings below are the
production ones (governance/settings.py), apart from AXES_ENABLED.
"""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from tests.factories import UserFactory
from tests.hostile import audit_html

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_on")]

PASSWORD = "pw-test-123!"  # tests.factories.UserFactory's
HOME = "203.0.113.10"
ELSEWHERE = "203.0.113.77"


@pytest.fixture
def axes_on():  # type: ignore[no-untyped-def]
    # A fast hasher: these tests make dozens of password checks.
    with override_settings(AXES_ENABLED=True, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


def attempt(username: str, password: str, *, ip: str = HOME, url: str | None = None):  # type: ignore[no-untyped-def]
    client = Client(REMOTE_ADDR=ip)
    response = client.post(url or reverse("login"), {"username": username, "password": password})
    return client, response


def fail(username: str, times: int, *, ip: str = HOME) -> None:
    for n in range(1, times + 1):
        _, response = attempt(username, "wrong-password", ip=ip)
        # The form again with its error, until the 5th failure, which is answered with the lockout.
        assert response.status_code == (429 if n >= 5 else 200)


def assert_logged_in(client: Client, response, username: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 302, response.content.decode()[:500]
    assert response["Location"] == settings.LOGIN_REDIRECT_URL
    assert client.get(reverse("registry:profile")).context["user"].get_username() == username


def assert_locked_out(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many failed logins" in html
    assert "locked after 5 failed attempts" in html
    assert "Try again in 15 min 00 s" in html
    assert "sessionid" not in response.cookies
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert not audit_html(html).findings


def test_the_production_limits() -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_ADDRESS_FAILURE_LIMIT == 30
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_RESET_ON_SUCCESS is True
    assert settings.AXES_HANDLER == "registry_app.sso.throttling.ThrottleHandler"
    assert settings.AXES_CLIENT_IP_CALLABLE == "registry_app.ops.client_ip.client_ip"
    assert settings.TRUSTED_PROXY_COUNT == 0
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"


def test_a_correct_password_logs_in() -> None:
    UserFactory(username="mlead")
    client, response = attempt("mlead", PASSWORD)
    assert_logged_in(client, response, "mlead")


def test_five_wrong_passwords_then_the_right_one_is_refused() -> None:
    UserFactory(username="mlead")
    fail("mlead", 4)
    assert not AccessAttempt.objects.filter(username="mlead", failures_since_start__gte=5).exists()
    _, fifth = attempt("mlead", "wrong-password")
    assert_locked_out(fifth)
    _, right = attempt("mlead", PASSWORD)
    assert_locked_out(right)


def test_the_admin_login_is_throttled_too() -> None:
    UserFactory(username="root", is_staff=True, is_superuser=True)
    for _ in range(4):
        attempt("root", "wrong-password", url=reverse("admin:login"))
    _, fifth = attempt("root", "wrong-password", url=reverse("admin:login"))
    assert_locked_out(fifth)
    _, right = attempt("root", PASSWORD)
    assert_locked_out(right)


def test_other_users_and_other_addresses_are_not_affected() -> None:
    UserFactory(username="mlead")
    UserFactory(username="fairness")
    fail("mlead", 5)
    client, response = attempt("fairness", PASSWORD)  # another user, same address
    assert_logged_in(client, response, "fairness")
    client, response = attempt("mlead", PASSWORD, ip=ELSEWHERE)  # the same user, another address
    assert_logged_in(client, response, "mlead")
    _, response = attempt("mlead", PASSWORD)  # still locked where the failures came from
    assert_locked_out(response)


@override_settings(AXES_COOLOFF_TIME=dt.timedelta(minutes=1))
def test_the_lock_lifts_after_the_cool_off() -> None:
    UserFactory(username="mlead")
    fail("mlead", 5)
    _, response = attempt("mlead", PASSWORD)
    assert response.status_code == 429
    # Time passes: age the recorded attempts past the cool-off instead of sleeping.
    aged = AccessAttempt.objects.filter(username="mlead").update(
        attempt_time=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    )
    assert aged == 1
    client, response = attempt("mlead", PASSWORD)
    assert_logged_in(client, response, "mlead")


def test_a_success_resets_the_count() -> None:
    UserFactory(username="mlead")
    fail("mlead", 4)
    client, response = attempt("mlead", PASSWORD)
    assert_logged_in(client, response, "mlead")
    assert not AccessAttempt.objects.filter(username="mlead").exists()
    fail("mlead", 4)
    client, response = attempt("mlead", PASSWORD)
    assert_logged_in(client, response, "mlead")


def test_logging_in_with_force_login_or_sessions_is_unaffected() -> None:
    user = UserFactory(username="viewer")
    fail("viewer", 5)
    client = Client(REMOTE_ADDR=HOME)
    client.force_login(user)  # an existing session is not a login attempt
    assert client.get(reverse("registry:group_list")).status_code == 200
