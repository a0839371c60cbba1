"""Profile page: opt out per kind (login required, CSRF) and watch/unwatch groups (POST only)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from registry_app.models import GroupWatcher, NotificationKind, NotificationPreference
from registry_app.notifications import profile
from registry_app.tasks import notify_review_requested_task
from tests.factories import ModelPackageGroupFactory, RegistrySourceFactory

from .conftest import make_user

pytestmark = pytest.mark.django_db

ALL_KINDS = list(NotificationKind.values)


@pytest.fixture
def lena(reviewers: dict[str, Any]) -> Any:
    return reviewers["ml-lead"]


@pytest.fixture
def client_for(lena: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(lena)
    return client


def _csrf(client: Client, url: str = "/profile/") -> str:
    client.get(url)
    return client.cookies["csrftoken"].value


def test_profile_requires_login() -> None:
    response = Client().get("/profile/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/profile/"
    assert Client().post("/profile/", {"wanted": []}).status_code == 302
    assert NotificationPreference.objects.count() == 0


def test_profile_shows_every_kind_checked_by_default(client_for: Client, lena: Any) -> None:
    response = client_for.get("/profile/")
    assert response.status_code == 200
    html = response.content.decode()
    for value, label in NotificationKind.choices:
        assert f'value="{value}" checked' in html
        assert str(label) in html
    assert "ml-lead" in html  # the user's roles


def test_opt_out_post_with_csrf(client_for: Client, lena: Any, mailoutbox: list[Any], package) -> None:
    token = _csrf(client_for)
    wanted = [k for k in ALL_KINDS if k != NotificationKind.REVIEW_REQUESTED]
    response = client_for.post("/profile/", {"wanted": wanted, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == "/profile/"
    assert NotificationPreference.objects.get(user=lena).opted_out == [NotificationKind.REVIEW_REQUESTED]

    html = client_for.get("/profile/").content.decode()
    assert f'value="{NotificationKind.REVIEW_REQUESTED}">' in html  # unchecked now
    assert f'value="{NotificationKind.DECIDED}" checked' in html

    notify_review_requested_task(package.pk)
    assert "lena@example.com" not in [m.to[0] for m in mailoutbox]

    client_for.post("/profile/", {"wanted": ALL_KINDS, "csrfmiddlewaretoken": token})
    assert NotificationPreference.objects.get(user=lena).opted_out == []


def test_opt_out_without_csrf_is_refused(client_for: Client, lena: Any) -> None:
    response = client_for.post("/profile/", {"wanted": []})
    assert response.status_code == 403
    assert not NotificationPreference.objects.filter(user=lena).exists()


def test_unknown_kind_is_rejected(client_for: Client, lena: Any) -> None:
    token = _csrf(client_for)
    response = client_for.post("/profile/", {"wanted": ["bogus"], "csrfmiddlewaretoken": token})
    assert response.status_code == 200  # the form with its error
    assert not NotificationPreference.objects.filter(user=lena).exists()


def test_preferences_service_drops_unknown_values(lena: Any) -> None:
    pref = profile.notification_preferences_set(lena, opted_out=["decided", "bogus", "decided"])
    assert pref.opted_out == ["decided"]


def test_watch_and_unwatch(client_for: Client, lena: Any, package) -> None:
    token = _csrf(client_for)
    url = "/groups/credit-risk/watch/"
    response = client_for.post(url, {"action": "watch", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == "/profile/"
    assert list(GroupWatcher.objects.values_list("user_id", "group_id")) == [(lena.pk, package.group_id)]
    client_for.post(url, {"action": "watch", "csrfmiddlewaretoken": token})  # repeat: still one row
    assert GroupWatcher.objects.count() == 1

    html = client_for.get("/profile/").content.decode()
    assert "Groups you watch" in html and 'action="/groups/credit-risk/watch/"' in html and "Unwatch" in html

    response = client_for.post(url, {"action": "unwatch", "next": "/groups/credit-risk/", "csrfmiddlewaretoken": token})
    assert response["Location"] == "/groups/credit-risk/"
    assert GroupWatcher.objects.count() == 0


def test_watch_is_post_only_login_and_csrf_protected(client_for: Client, package) -> None:
    url = "/groups/credit-risk/watch/"
    assert client_for.get(url).status_code == 405
    assert client_for.post(url, {"action": "watch"}).status_code == 403
    anonymous = Client().post(url, {"action": "watch"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert GroupWatcher.objects.count() == 0


def test_watch_picks_the_source_and_refuses_bad_input(client_for: Client, lena: Any, package) -> None:
    staging = ModelPackageGroupFactory(
        name="credit-risk", source=RegistrySourceFactory(name="staging", account_id="444455556666")
    )
    token = _csrf(client_for)
    url = "/groups/credit-risk/watch/"
    client_for.post(url, {"action": "watch", "source": "staging", "csrfmiddlewaretoken": token})
    assert list(GroupWatcher.objects.values_list("group_id", flat=True)) == [staging.pk]
    assert client_for.post(url, {"action": "steal", "csrfmiddlewaretoken": token}).status_code == 400
    assert client_for.post("/groups/nope/watch/", {"action": "watch", "csrfmiddlewaretoken": token}).status_code == 404
    offsite = client_for.post(url, {"action": "watch", "next": "https://evil.example/", "csrfmiddlewaretoken": token})
    assert offsite["Location"] == "/profile/"


def test_profile_warns_without_email(package) -> None:
    client = Client()
    client.force_login(make_user("ghost", email=""))
    assert b"no email address" in client.get("/profile/").content
