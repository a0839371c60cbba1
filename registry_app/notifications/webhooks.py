"""Calling chat and webhook endpoints: their secrets (from the environment), HMAC signatures, the HTTP POST.

* Secrets never live in the database: ``WebhookEndpoint.url_env`` / ``secret_env`` name environment
  variables (``NAME`` or ``NAME_FILE``, read at send time, never logged or shown).
* Generic webhooks are signed: ``X-Governance-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``
  with ``X-Governance-Timestamp`` (Unix seconds): a receiver recomputes the HMAC over the raw body and
  refuses timestamps older than a few minutes, so a captured request cannot be replayed later
  (``verify_signature``, and README "Webhooks"). ``X-Governance-Delivery`` (the outbox row's id) is the
  same on every retry: a receiver drops repeats by it.
* The POST: only http(s) URLs (configured by staff), no redirects followed, a timeout
  (``NOTIFY_WEBHOOK_TIMEOUT_SECONDS``), at most 2 KiB of the answer read, and never inside a transaction.
  Errors are ``WebhookError``: ``permanent`` for answers retrying cannot fix (4xx but 408/425/429, a
  redirect, a missing variable), else retried by the sender with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from governance.env import env_str
from registry_app.models import WebhookEndpoint
from registry_app.models.notifications import ENV_NAME, check_webhook_url

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookError",
    "endpoint_secret",
    "endpoint_url",
    "post_json",
    "sign",
    "signed_headers",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Governance-Signature"
TIMESTAMP_HEADER = "X-Governance-Timestamp"
DELIVERY_HEADER = "X-Governance-Delivery"
EVENT_HEADER = "X-Governance-Event"
SIGNATURE_VERSION = "v1"
REPLAY_TOLERANCE_SECONDS = 300
USER_AGENT = "model-governance-notifications/1"
RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def _env(name: str, what: str) -> str:
    if not ENV_NAME.match(name or ""):
        raise WebhookError(f"{what}: {name!r} is not a WEBHOOK_* variable name", permanent=True)
    try:
        value = (env_str(name) or "").strip()
    except OSError as exc:  # NAME_FILE names a file that cannot be read
        raise WebhookError(f"{what}: {name}_FILE cannot be read ({type(exc).__name__})", permanent=True) from exc
    if not value:
        raise WebhookError(f"{what}: the environment variable {name} (or {name}_FILE) is not set", permanent=True)
    return value


def endpoint_url(hook: WebhookEndpoint) -> str:
    """The URL to POST to: the stored one (generic) or the variable's. Raises ``WebhookError``."""
    url = hook.url or _env(hook.url_env, f"webhook {hook.name} URL")
    try:
        return check_webhook_url(url)
    except ValueError as exc:
        raise WebhookError(f"webhook {hook.name}: {exc}", permanent=True) from exc


def endpoint_secret(hook: WebhookEndpoint) -> str:
    return _env(hook.secret_env, f"webhook {hook.name} signing secret")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def signed_headers(
    secret: str, body: bytes, *, delivery_id: int, event: str, now: float | None = None
) -> dict[str, str]:
    timestamp = int(now if now is not None else time.time())
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        DELIVERY_HEADER: str(delivery_id),
        EVENT_HEADER: event,
    }


def verify_signature(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance: int = REPLAY_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: the signature matches the raw body and the timestamp is recent (either way)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered.get(TIMESTAMP_HEADER.lower(), ""))
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), lowered.get(SIGNATURE_HEADER.lower(), ""))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as an error: a webhook must not be bounced to another (internal) address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post_json(url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str] | None = None) -> int:
    """POST ``payload`` (or pre-encoded bytes under ``headers``' signature) as JSON; returns the 2xx status."""
    body = payload_bytes(payload)
    return post_bytes(url, body, headers=headers)


def payload_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def post_bytes(url: str, body: bytes, *, headers: Mapping[str, str] | None = None) -> int:
    try:
        check_webhook_url(url)
    except ValueError as exc:
        raise WebhookError(str(exc), permanent=True) from exc
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT, **(headers or {})},
    )
    timeout = float(settings.NOTIFY_WEBHOOK_TIMEOUT_SECONDS)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(2048)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        with exc:
            reason = exc.read(200).decode("utf-8", "replace").strip()
        permanent = (300 <= status < 500) and status not in RETRYABLE_STATUS
        raise WebhookError(f"HTTP {status} {exc.reason}: {reason}"[:300], permanent=permanent) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}"[:300]) from exc
