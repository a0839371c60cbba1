"""Profile page: per kind immediately / daily digest / never (login required, CSRF) and watch/unwatch groups
(POST only)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from registry_app.models import GroupWatcher, NotificationKind, NotificationPreference
from registry_app.models.signoffs import EMAIL_KINDS
from registry_app.notifications import profile
from registry_app.tasks import notify_review_requested_task
from tests.factories import ModelPackageGroupFactory, RegistrySourceFactory

from .conftest import make_user

pytestmark = pytest.mark.django_db


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


def test_profile_shows_every_emailed_kind_immediately_by_default(client_for: Client, lena: Any) -> None:
    response = client_for.get("/profile/")
    assert response.status_code == 200
    html = response.content.decode()
    labels = dict(NotificationKind.choices)
    for kind in EMAIL_KINDS:
        assert f'name="mode_{kind}" value="immediate" checked' in html
        assert f'name="mode_{kind}" value="daily" aria-label' in html
        assert f'name="mode_{kind}" value="off" aria-label' in html
        assert str(labels[kind]) in html
    # Issue 15's two kinds are e-mailed (and so offered) like the others.
    assert {"finding_raised", "revalidation_due"} <= set(EMAIL_KINDS)
    assert "ml-lead" in html  # the user's roles
    assert "07:00 UTC" in html


def test_modes_post_with_csrf(client_for: Client, lena: Any, mailoutbox: list[Any], package) -> None:
    token = _csrf(client_for)
    data = {
        "mode_review_requested": "off",
        "mode_decided": "daily",
        "mode_sla_reminder": "immediate",
        "csrfmiddlewaretoken": token,
    }
    response = client_for.post("/profile/", data)
    assert response.status_code == 302 and response["Location"] == "/profile/"
    pref = NotificationPreference.objects.get(user=lena)
    assert (pref.opted_out, pref.daily) == ([NotificationKind.REVIEW_REQUESTED], [NotificationKind.DECIDED])
    assert pref.mode(NotificationKind.CONFLICT) == "immediate"

    html = client_for.get("/profile/").content.decode()
    assert 'name="mode_review_requested" value="off" checked' in html
    assert 'name="mode_decided" value="daily" checked' in html

    notify_review_requested_task(package.pk)
    assert "lena@example.com" not in [m.to[0] for m in mailoutbox]

    # A kind left out keeps its choice; the others change.
    client_for.post("/profile/", {"mode_review_requested": "immediate", "csrfmiddlewaretoken": token})
    pref.refresh_from_db()
    assert (pref.opted_out, pref.daily) == ([], [NotificationKind.DECIDED])


def test_modes_without_csrf_are_refused(client_for: Client, lena: Any) -> None:
    response = client_for.post("/profile/", {"mode_decided": "off"})
    assert response.status_code == 403
    assert not NotificationPreference.objects.filter(user=lena).exists()


def test_an_unknown_mode_is_rejected(client_for: Client, lena: Any) -> None:
    token = _csrf(client_for)
    response = client_for.post("/profile/", {"mode_decided": "hourly", "csrfmiddlewaretoken": token})
    assert response.status_code == 200  # the form with its error
    assert not NotificationPreference.objects.filter(user=lena).exists()


def test_preferences_service_drops_unknown_values_and_off_wins(lena: Any) -> None:
    pref = profile.notification_preferences_set(
        lena, opted_out=["decided", "bogus", "decided"], daily=["decided", "conflict"]
    )
    assert (pref.opted_out, pref.daily) == (["decided"], ["conflict"])


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
