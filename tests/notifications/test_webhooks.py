"""Slack, Teams and signed generic webhooks: formats and escaping, HMAC signatures against replay, routing by
group / tag / role / event, retries from the outbox, secrets only in the environment. Against a loopback
HTTP receiver."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from registry_app.models import Decision, Notification, NotificationKind, PushOutbox, WebhookEndpoint
from registry_app.notifications import webhooks
from registry_app.notifications.emails import notify_conflict, notify_decided, notify_review_requested
from registry_app.notifications.sender import notifications_send_due
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory

from .conftest import SITE
from .loopback import HttpReceiver, http_receiver

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-signing-key"
EVIL = "<!channel> *urgent* <https://evil.example|click> & {{DATE(2017-02-14T06:08:39Z, SHORT)}}"


def _verify(body: bytes, headers: dict[str, str]) -> bool:
    return webhooks.verify_signature(SECRET, body, headers)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpReceiver]:
    with http_receiver(verify=_verify) as receiver:
        monkeypatch.setenv("WEBHOOK_SLACK", receiver.url("/slack"))
        monkeypatch.setenv("WEBHOOK_TEAMS", receiver.url("/teams"))
        monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
        yield receiver


def _slack(**extra: Any) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name="slack", format="slack", url_env="WEBHOOK_SLACK", **extra)


def _teams(**extra: Any) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name="teams", format="teams", url_env="WEBHOOK_TEAMS", **extra)


def _generic(receiver: HttpReceiver, path: str = "/signed/hook", **extra: Any) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        name=f"generic{path}", format="generic", url=receiver.url(path), secret_env="WEBHOOK_SECRET", **extra
    )


def _decision(package: Any, kind: str = "policy", status: str = "Approved") -> Decision:
    return Decision.objects.create(package=package, kind=kind, status=status, description="Because <reasons>")


@pytest.fixture
def evil_package(db: None) -> Any:
    group = ModelPackageGroupFactory(name="credit-risk", tags={"RiskTier": "High"})
    return ModelPackageFactory(group=group, version=3, approval_status="PendingManualApproval", description=EVIL)


# --------------------------------------------------------------------------------------------- formats


def test_slack_message_links_the_review_page_and_escapes_registry_text(receiver: HttpReceiver, package) -> None:
    _slack()
    decision = Decision.objects.create(package=package, kind="rejection", status="Rejected", decided_by=None)
    Decision.objects.filter(pk=decision.pk).update(description=EVIL)
    push = PushOutbox.objects.create(
        package=package,
        kind="decision",
        expected_status="PendingManualApproval",
        state="conflict",
        conflict_detail={"found_status": "<!here> Approved"},
    )
    notify_decided(decision.pk)
    notify_conflict(push.pk)
    assert notifications_send_due().messages == 1  # both due at once: one message to the channel
    (post,) = receiver.at("/slack")
    body = post.json()
    text = "\n".join(block["text"]["text"] for block in body["blocks"])
    assert f"<{SITE}/packages/credit-risk/3/|credit-risk v3>" in text
    assert f"<{SITE}/queue/|Open the review queue>" in text
    assert "&lt;!here&gt; Approved" in text and "<!here>" not in text
    assert "<!" not in body["text"]
    assert post.headers["Content-Type"].startswith("application/json")


def test_slack_single_event_and_escaping_of_names(receiver: HttpReceiver, evil_package: Any, reviewers: Any) -> None:
    _slack()
    evil_package.group.name = "evil<!channel>&co"
    evil_package.group.save()
    notify_review_requested(evil_package.pk)
    notifications_send_due()
    body = receiver.at("/slack")[0].json()
    text = body["blocks"][0]["text"]["text"]
    assert "*Review requested: evil&lt;!channel&gt;&amp;co v3*" in text
    assert f"<{SITE}/packages/evil%3C!channel%3E&amp;co/3/|Open the review page>" in text
    assert "<!channel>" not in json.dumps(body)


def test_teams_card_puts_registry_text_in_text_runs_only(receiver: HttpReceiver, package) -> None:
    _teams()
    decision = _decision(package)
    Decision.objects.filter(pk=decision.pk).update(decided_by=None)
    package.group.name = "**bold** [x](mailto:evil) {{DATE(2017-02-14T06:08:39Z, SHORT)}}"
    package.group.save()
    notify_decided(decision.pk)
    notifications_send_due()
    message = receiver.at("/teams")[0].json()
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert {element["type"] for element in card["body"]} == {"RichTextBlock"}  # no TextBlock: no markdown
    runs = [run["text"] for element in card["body"] for run in element["inlines"]]
    assert any("**bold** [x](mailto:evil)" in run for run in runs)  # shown as typed
    assert not any("{{DATE(" in run for run in runs)
    (action,) = card["actions"]
    assert action == {
        "type": "Action.OpenUrl",
        "title": "Open the review page",
        "url": action["url"],
    } and action["url"].startswith(f"{SITE}/packages/")


def test_generic_webhook_is_signed_and_carries_the_event(receiver: HttpReceiver, evil_package: Any) -> None:
    hook = _generic(receiver)
    decision = _decision(evil_package, kind="revocation", status="Rejected")
    notify_decided(decision.pk)
    notifications_send_due()
    (post,) = receiver.at("/signed/hook")
    assert post.signature_ok is True
    row = Notification.objects.get(webhook=hook)
    assert row.state == Notification.State.SENT and row.kind == NotificationKind.REVOKED
    assert post.headers["X-Governance-Event"] == "review.revoked"
    assert post.headers["X-Governance-Delivery"] == str(row.pk)
    assert abs(int(post.headers["X-Governance-Timestamp"]) - time.time()) < 60
    payload = post.json()
    assert payload["id"] == str(row.pk) and payload["event"] == "review.revoked" and payload["attempt"] == 1
    assert payload["package"]["group"] == "credit-risk" and payload["package"]["version"] == 3
    assert payload["package"]["url"] == f"{SITE}/packages/credit-risk/3/"
    assert payload["data"]["verb"] == "revoked" and payload["data"]["description"] == "Because <reasons>"
    assert payload["summary"] == "credit-risk v3 revoked by the governance policy"


def test_signature_refuses_tampering_and_replay() -> None:
    body = b'{"event":"review.decided"}'
    headers = webhooks.signed_headers(SECRET, body, delivery_id=7, event="review.decided", now=1_000_000)
    assert webhooks.verify_signature(SECRET, body, headers, now=1_000_010)
    assert not webhooks.verify_signature(SECRET, body + b" ", headers, now=1_000_010)  # tampered
    assert not webhooks.verify_signature("other", body, headers, now=1_000_010)  # wrong secret
    assert not webhooks.verify_signature(SECRET, body, headers, now=1_000_000 + 301)  # replayed later
    assert not webhooks.verify_signature(SECRET, body, {**headers, "X-Governance-Timestamp": "x"}, now=1_000_000)
    forged = {**headers, "X-Governance-Timestamp": "1000290"}  # a fresh timestamp on an old signature
    assert not webhooks.verify_signature(SECRET, body, forged, now=1_000_300)


# --------------------------------------------------------------------------------------------- routing


def test_endpoints_get_the_events_of_their_group_tag_role_and_kinds(receiver: HttpReceiver, evil_package: Any) -> None:
    matching = [
        _generic(receiver, "/signed/all"),
        _generic(receiver, "/signed/group", group_name="credit-risk"),
        _generic(receiver, "/signed/tag", tag_key="RiskTier", tag_value="High"),
        _generic(receiver, "/signed/tagkey", tag_key="RiskTier"),
        _generic(receiver, "/signed/role", role="fairness"),
        _generic(receiver, "/signed/kind", events=[NotificationKind.REVIEW_REQUESTED]),
    ]
    _generic(receiver, "/signed/othergroup", group_name="fraud")
    _generic(receiver, "/signed/othertag", tag_key="RiskTier", tag_value="Low")
    _generic(receiver, "/signed/otherrole", role="model-risk")
    _generic(receiver, "/signed/otherkind", events=[NotificationKind.DECIDED])
    _generic(receiver, "/signed/off", enabled=False)
    notify_review_requested(evil_package.pk)
    assert set(Notification.objects.values_list("webhook__name", flat=True)) == {h.name for h in matching}
    notifications_send_due()
    assert sorted(r.path for r in receiver.received) == sorted(h.url.removeprefix(receiver.url("")) for h in matching)


def test_a_name_no_url_can_hold_still_gets_a_link(receiver: HttpReceiver, package) -> None:
    _slack()
    package.group.name = "a/b"
    package.group.save()
    notify_decided(_decision(package).pk)
    notifications_send_due()
    assert (
        f"<{SITE}/groups/?q=a%2Fb|Open the review page>" in receiver.at("/slack")[0].json()["blocks"][0]["text"]["text"]
    )


def test_a_disabled_endpoint_cancels_what_it_had_not_sent(receiver: HttpReceiver, package) -> None:
    hook = _slack()
    notify_decided(_decision(package).pk)
    WebhookEndpoint.objects.filter(pk=hook.pk).update(enabled=False)
    notifications_send_due()
    assert receiver.received == []
    assert Notification.objects.get(webhook=hook).state == Notification.State.CANCELLED


# --------------------------------------------------------------------------------------------- failures


def test_a_5xx_is_retried_from_the_outbox_with_the_same_delivery_id(receiver: HttpReceiver, package) -> None:
    hook = _generic(receiver)
    receiver.answers["/signed/hook"] = [503]
    notify_decided(_decision(package).pk)
    notifications_send_due()
    row = Notification.objects.get(webhook=hook)
    assert (row.state, row.attempts) == (Notification.State.PENDING, 1) and "HTTP 503" in row.last_error
    notifications_send_due(now=timezone.now() + dt.timedelta(minutes=5))
    first, second = receiver.at("/signed/hook")
    assert first.headers["X-Governance-Delivery"] == second.headers["X-Governance-Delivery"] == str(row.pk)
    assert second.json()["attempt"] == 2 and second.signature_ok
    row.refresh_from_db()
    assert row.state == Notification.State.SENT


@pytest.mark.parametrize(("answer", "state"), [(404, "failed"), (302, "failed"), (429, "pending"), (500, "pending")])
def test_answers_that_retrying_cannot_fix_fail_at_once(
    receiver: HttpReceiver, package, answer: int, state: str
) -> None:
    hook = _slack()
    receiver.answers["/slack"] = [answer]
    notify_decided(_decision(package).pk)
    notifications_send_due()
    row = Notification.objects.get(webhook=hook)
    assert row.state == state and f"HTTP {answer}" in row.last_error
    assert len(receiver.at("/slack")) == 1  # a redirect is not followed


def test_a_missing_variable_fails_visibly_without_revealing_anything(
    receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch, package
) -> None:
    hook = _slack()
    monkeypatch.delenv("WEBHOOK_SLACK")
    notify_decided(_decision(package).pk)
    notifications_send_due()
    row = Notification.objects.get(webhook=hook)
    assert row.state == Notification.State.FAILED
    assert "WEBHOOK_SLACK" in row.last_error and "is not set" in row.last_error


def test_a_secret_url_never_reaches_the_database_or_the_error(
    receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch, package
) -> None:
    secret_url = "http://127.0.0.1:9/services/T000/B000/XXXXSECRET"  # nothing listens on port 9
    monkeypatch.setenv("WEBHOOK_SLACK", secret_url)
    hook = _slack()
    notify_decided(_decision(package).pk)
    notifications_send_due()
    row = Notification.objects.get(webhook=hook)
    assert row.state == Notification.State.PENDING and row.last_error
    assert "XXXXSECRET" not in row.last_error
    assert "XXXXSECRET" not in json.dumps(list(WebhookEndpoint.objects.values()), default=str)


def test_a_file_secret_is_read(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, receiver: HttpReceiver, package) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    monkeypatch.delenv("WEBHOOK_SECRET")
    monkeypatch.setenv("WEBHOOK_SECRET_FILE", str(tmp_path / "secret"))
    _generic(receiver)
    notify_decided(_decision(package).pk)
    notifications_send_due()
    assert receiver.at("/signed/hook")[0].signature_ok is True


# --------------------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"format": "slack", "url": "https://hooks.slack.com/services/T/B/X"}, "url"),
        ({"format": "slack"}, "url_env"),
        ({"format": "teams", "url_env": "DATABASE_URL"}, "url_env"),
        ({"format": "generic", "url": "https://example.com/hook"}, "secret_env"),
        ({"format": "generic", "url": "ftp://example.com/x", "secret_env": "WEBHOOK_S"}, "url"),
        ({"format": "generic", "url": "https://user:pw@example.com/x", "secret_env": "WEBHOOK_S"}, "url"),
        ({"format": "generic", "secret_env": "SECRET_KEY", "url_env": "WEBHOOK_U"}, "secret_env"),
        ({"format": "generic", "url_env": "WEBHOOK_U", "secret_env": "WEBHOOK_S", "events": ["nope"]}, "events"),
        ({"format": "slack", "url_env": "WEBHOOK_U", "tag_value": "High"}, "tag_value"),
    ],
)
def test_endpoint_configuration_is_validated(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        WebhookEndpoint(name="x", **fields).full_clean()
    assert field in refused.value.message_dict


def test_the_admin_stores_variable_names_and_shows_whether_they_are_set(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123!")
    client.force_login(admin)
    response = client.post(
        "/admin/registry_app/webhookendpoint/add/",
        {
            "name": "fairness-slack",
            "format": "slack",
            "enabled": "on",
            "url_env": "WEBHOOK_FAIRNESS_SLACK",
            "events": [NotificationKind.REVIEW_REQUESTED, NotificationKind.DECIDED],
            "role": "fairness",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    hook = WebhookEndpoint.objects.get(name="fairness-slack")
    assert hook.events == [NotificationKind.REVIEW_REQUESTED, NotificationKind.DECIDED] and hook.url == ""
    listing = client.get("/admin/registry_app/webhookendpoint/").content.decode()
    assert 'alt="False"' in listing
    monkeypatch.setenv("WEBHOOK_FAIRNESS_SLACK", "https://hooks.slack.com/services/T/B/X")
    listing = client.get("/admin/registry_app/webhookendpoint/").content.decode()
    assert 'alt="True"' in listing and "hooks.slack.com" not in listing


def test_a_finding_raised_can_be_emitted_and_reaches_email_and_a_webhook(
    receiver: HttpReceiver, mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    from registry_app.notifications.emails import notify_package_event

    _generic(receiver, events=[NotificationKind.FINDING_RAISED, NotificationKind.REVALIDATION_DUE])
    added = notify_package_event(
        NotificationKind.FINDING_RAISED,
        package,
        key="finding:12",
        facts={"title": "Disparate impact fell to 0.71 <in production>", "severity": "high"},
        users=[reviewers["fairness"]],
    )
    assert added.rows == 2 and added.due_now
    notifications_send_due()
    (message,) = mailoutbox
    assert message.to == ["farid@example.com"]
    assert "Disparate impact fell to 0.71 <in production>" in message.body
    assert "&lt;in production&gt;" in message.alternatives[0][0]
    (post,) = receiver.at("/signed/hook")
    payload = post.json()
    assert post.signature_ok and payload["event"] == "finding.raised"
    assert payload["data"] == {"title": "Disparate impact fell to 0.71 <in production>", "severity": "high"}
    assert payload["summary"] == "Finding raised: credit-risk v3"
