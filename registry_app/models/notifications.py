"""Chat and webhook endpoints that notifications are delivered to (the rows are ``signoffs.Notification``).

No secret is stored here: a Slack or Teams incoming-webhook URL is itself a secret (whoever has it may
post to the channel), so the admin stores the NAME of the environment variable holding it (read with
``NAME_FILE`` support, like every setting); a generic webhook's URL may be stored, its HMAC signing secret
never is. Variable names must start with ``WEBHOOK_`` so an endpoint can never be pointed at another
setting (``SECRET_KEY``, ``DATABASE_URL``...).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models

from .signoffs import NotificationKind

ENV_NAME = re.compile(r"^WEBHOOK_[A-Z0-9_]{1,100}$")

# What an endpoint may subscribe to (SLA reminders are personal: e-mail only).
WEBHOOK_KINDS: tuple[str, ...] = (
    NotificationKind.REVIEW_REQUESTED,
    NotificationKind.DECIDED,
    NotificationKind.REVOKED,
    NotificationKind.CONFLICT,
    NotificationKind.FINDING_RAISED,
    NotificationKind.REVALIDATION_DUE,
)


def check_webhook_url(url: str) -> str:
    """An absolute http(s) URL without user:password (staff-entered; the worker POSTs to it). Raises ValueError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("The webhook URL must be an absolute http:// or https:// URL.")
    if parts.username or parts.password:
        raise ValueError("The webhook URL must not contain a user name or password.")
    return url.strip()


class WebhookEndpoint(models.Model):
    """A Slack / Microsoft Teams incoming webhook or a generic JSON webhook, and which events it receives."""

    class Format(models.TextChoices):
        SLACK = "slack", "Slack incoming webhook (mrkdwn)"
        TEAMS = "teams", "Microsoft Teams incoming webhook (Adaptive Card)"
        GENERIC = "generic", "Generic JSON webhook (HMAC-SHA256 signed)"

    name = models.CharField(max_length=64, unique=True)
    format = models.CharField(max_length=16, choices=Format.choices)
    enabled = models.BooleanField(default=True)
    url = models.CharField(
        max_length=2000, blank=True, help_text="Generic webhooks only: the http(s) URL to POST to (not a secret)"
    )
    url_env = models.CharField(
        max_length=128,
        blank=True,
        help_text="Name of the environment variable (or NAME_FILE) holding the URL; required for Slack and Teams, "
        "whose webhook URLs are secrets. Must start with WEBHOOK_.",
    )
    secret_env = models.CharField(
        max_length=128,
        blank=True,
        help_text="Generic webhooks: name of the environment variable (or NAME_FILE) holding the HMAC-SHA256 "
        "signing secret. Must start with WEBHOOK_.",
    )
    events = models.JSONField(default=list, blank=True, help_text="Notification kinds to send; empty: all")
    group_name = models.CharField(max_length=170, blank=True, help_text="Only this model package group (exact name)")
    tag_key = models.CharField(max_length=128, blank=True, help_text="Only groups with this tag...")
    tag_value = models.CharField(max_length=256, blank=True, help_text="...with this value (empty: any value)")
    role = models.CharField(max_length=64, blank=True, help_text="Only packages whose policy requires this role")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.format})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for field in ("url_env", "secret_env"):
            value = getattr(self, field)
            if value and not ENV_NAME.match(value):
                errors[field] = "Use an environment variable name in capitals that starts with WEBHOOK_."
        if self.format in (self.Format.SLACK, self.Format.TEAMS):
            if self.url:
                errors["url"] = "Slack and Teams webhook URLs are secrets: give the variable holding it (URL env)."
            if not self.url_env:
                errors.setdefault("url_env", "Name the environment variable holding the incoming webhook URL.")
        else:
            if bool(self.url) == bool(self.url_env):
                errors["url"] = "Give either the URL or the environment variable holding it."
            if not self.secret_env:
                errors.setdefault("secret_env", "A generic webhook is signed: name the variable holding the secret.")
        if self.url and "url" not in errors:
            try:
                check_webhook_url(self.url)
            except ValueError as exc:
                errors["url"] = str(exc)
        unknown = [kind for kind in self.events or [] if kind not in WEBHOOK_KINDS]
        if unknown:
            errors["events"] = f"Unknown events: {', '.join(map(str, unknown))}."
        if self.tag_value and not self.tag_key:
            errors["tag_value"] = "A tag value needs a tag key."
        if errors:
            raise ValidationError(errors)

    def wants(self, kind: str) -> bool:
        return kind in WEBHOOK_KINDS and (not self.events or kind in self.events)
