"""API tokens: create (shown once), authenticate, revoke. Writes.

A token reads ``gov_<prefix>_<secret>``: ``prefix`` (10 lower-case letters and digits) is stored as
is and finds the row; ``secret`` (32 random bytes, URL-safe base64) makes the token unguessable.
Only the SHA-256 of the whole token is stored: a plain hash suffices for 256 random bits (no
dictionary to attack) and, unlike an HMAC keyed with ``SECRET_KEY``, survives a key rotation.
The comparison is constant-time, and an unknown prefix costs the same digest and comparison.

Each token acts as a service account: a Django user ``svc-<name>`` with no password and no role
(reading the mirror needs an active account, nothing more), so audit entries name it like a person.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from registry_app.audit.log import audit_append
from registry_app.models import ApiToken, AuditLogEntry

__all__ = [
    "LAST_USED_RESOLUTION",
    "SERVICE_ACCOUNT_PREFIX",
    "TOKEN_NAME_RE",
    "TokenRejected",
    "service_account_name",
    "token_authenticate",
    "token_create",
    "token_revoke",
]

TOKEN_MARK = "gov_"
PREFIX_LENGTH = 10
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_TOKEN_RE = re.compile(rf"{TOKEN_MARK}([a-z0-9]{{{PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{43}})")
TOKEN_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
SERVICE_ACCOUNT_PREFIX = "svc-"
# Pipelines call many times a minute; one UPDATE a minute says "in use" well enough.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
MAX_EXPIRY_DAYS = 3660
_DUMMY_DIGEST = hashlib.sha256(b"no such token").hexdigest()
Via = AuditLogEntry.Via


class TokenRejected(Exception):
    """The presented token does not authenticate. ``code``: invalid_token, token_expired,
    token_revoked or account_disabled."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


def service_account_name(name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{name}"


def _service_account(name: str) -> Any:
    """The token's user, created without a usable password; refuses a person's account."""
    model = get_user_model()
    username = service_account_name(name)
    user = model.objects.filter(**{model.USERNAME_FIELD: username}).first()
    if user is None:
        return model.objects.create_user(username, email="", password=None)
    if user.has_usable_password():
        raise ValueError(f"{username!r} is a person's account (it has a password), not a service account.")
    if not user.is_active:
        raise ValueError(f"The service account {username!r} is deactivated; reactivate it in the admin first.")
    return user


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in ApiToken.Scope.values]
    if unknown or not chosen:
        raise ValueError(f"Scopes must be one or more of {', '.join(ApiToken.Scope.values)}; got {unknown or 'none'}.")
    return chosen


def token_create(
    *, name: str, scopes: Iterable[str], expires_days: int | None = None, replace: bool = False
) -> tuple[ApiToken, str]:
    """Create a token named ``name`` and return ``(row, token)``; the token is never stored.

    Transaction: the service account (created on first use), with ``replace`` the revocation of
    the live token of that name, the new row and an audit entry (``via=command``). Raises
    ``ValueError`` for a bad name, scope or expiry, or a live token of that name without ``replace``.
    """
    if not isinstance(name, str) or not TOKEN_NAME_RE.fullmatch(name):
        raise ValueError("A token name is 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit.")
    chosen = _clean_scopes(scopes)
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise ValueError(f"--expires-days must be between 1 and {MAX_EXPIRY_DAYS}.")
    now = timezone.now()
    expires_at = now + dt.timedelta(days=expires_days) if expires_days is not None else None
    with transaction.atomic():
        user = _service_account(name)
        live = ApiToken.objects.select_for_update().filter(name=name, revoked_at__isnull=True).first()
        if live is not None:
            if not replace:
                raise ValueError(f"A live token named {name!r} exists; revoke it first or use --replace.")
            _revoke(live, actor=None, via=Via.COMMAND, now=now, reason="replaced")
        for _ in range(5):  # a prefix collision (1 in 36**10 per pair) just draws again
            prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
            raw = f"{TOKEN_MARK}{prefix}_{secrets.token_urlsafe(32)}"
            try:
                with transaction.atomic():
                    token = ApiToken.objects.create(
                        name=name, user=user, prefix=prefix, digest=_digest(raw), scopes=chosen, expires_at=expires_at
                    )
                break
            except IntegrityError:
                continue
        else:  # pragma: no cover - five collisions in a row
            raise RuntimeError("could not draw a unique token prefix")
        audit_append(
            "api_token.created",
            actor=None,
            via=Via.COMMAND,
            subject=token,
            after={"name": name, "prefix": prefix, "scopes": chosen, "expires_at": expires_at, "user": user.username},
            message=f"API token {name} ({prefix}…) created for {user.username}: {' '.join(chosen)}",
        )
    return token, raw


def token_authenticate(raw: str, *, now: dt.datetime | None = None) -> ApiToken:
    """The live token ``raw`` names (user selected), else ``TokenRejected``.

    Queries: one lookup by prefix, and at most once a minute per token a conditional UPDATE of
    ``last_used_at`` (outside any transaction of the caller's making: autocommit).
    """
    now = now or timezone.now()
    match = _TOKEN_RE.fullmatch(raw or "") if isinstance(raw, str) and raw.isascii() else None
    token = None
    if match is not None:
        token = ApiToken.objects.select_related("user").filter(prefix=match.group(1)).first()
    presented = _digest(raw) if match is not None else _DUMMY_DIGEST
    if not hmac.compare_digest(token.digest if token is not None else _DUMMY_DIGEST, presented) or token is None:
        raise TokenRejected("invalid_token", "The bearer token is not valid.")
    if token.revoked_at is not None:
        raise TokenRejected("token_revoked", f"The token {token.name} was revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRejected("token_expired", f"The token {token.name} expired.")
    if not token.user.is_active:
        raise TokenRejected("account_disabled", f"The service account of token {token.name} is deactivated.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        token.last_used_at = now
    return token


def _revoke(token: ApiToken, *, actor: Any, via: str, now: dt.datetime, reason: str) -> bool:
    if not ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
        return False
    token.revoked_at = now
    audit_append(
        "api_token.revoked",
        actor=actor,
        via=via,
        subject=token,
        before={"revoked_at": None},
        after={"revoked_at": now, "name": token.name, "prefix": token.prefix, "reason": reason},
        message=f"API token {token.name} ({token.prefix}…) revoked ({reason})",
    )
    return True


def token_revoke(token: ApiToken, *, actor: Any, via: str = Via.WEB, reason: str = "revoked") -> bool:
    """Revoke ``token`` now (conditional UPDATE, so twice is harmless) with an audit entry.
    Returns False when it was already revoked."""
    with transaction.atomic():
        return _revoke(token, actor=actor, via=via, now=timezone.now(), reason=reason)
