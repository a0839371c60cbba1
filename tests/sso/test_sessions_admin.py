"""Sessions expire (8 hours by default, optionally at browser close) and the admin is for staff only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client, override_settings
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-test-123!"


def log_in(username: str) -> tuple[Client, object]:
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return client, response


def test_session_lasts_a_working_day_by_default() -> None:
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is False
    assert settings.SESSION_COOKIE_HTTPONLY is True
    UserFactory(username="mlead")
    _, response = log_in("mlead")
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]  # type: ignore[attr-defined]
    assert cookie["max-age"] == 8 * 3600
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"


@override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True)
def test_session_can_end_with_the_browser() -> None:
    UserFactory(username="mlead")
    _, response = log_in("mlead")
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]  # type: ignore[attr-defined]
    assert cookie["max-age"] == "" and cookie["expires"] == ""


def test_an_expired_session_must_log_in_again() -> None:
    UserFactory(username="mlead")
    client, _ = log_in("mlead")
    assert client.get(reverse("registry:group_list")).status_code == 200
    Session.objects.update(expire_date=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    response = client.get(reverse("registry:group_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)


def test_a_logged_in_non_staff_user_gets_the_admin_login_not_the_index() -> None:
    client = Client()
    client.force_login(UserFactory(username="reviewer", is_staff=False))
    response = client.get(reverse("admin:index"), follow=True)
    assert response.redirect_chain == [(f"{reverse('admin:login')}?next={reverse('admin:index')}", 302)]
    html = response.content.decode()
    assert "You are authenticated as reviewer, but are not authorized to access this page" in html
    assert "Site administration" not in html
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 302


def test_staff_get_the_admin_index() -> None:
    client = Client()
    client.force_login(UserFactory(username="operator", is_staff=True))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "Site administration" in response.content.decode()
