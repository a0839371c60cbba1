"""Who is calling: a service account's bearer token, or a signed-in person's session. No one else.

A request that carries an ``Authorization`` header is decided by it alone (a wrong token is a 401,
never a fall-back to the browser session). A session stands for every scope: a person who may read
the dashboard may read what the API shows. ``request.auth`` is a ``Caller`` afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from registry_app.api.errors import ApiError
from registry_app.gate.tokens import TokenRejected, token_authenticate
from registry_app.models import ApiToken
from registry_app.permissions import is_active_user

__all__ = ["ALL_SCOPES", "BearerToken", "Caller", "PersonSession", "caller_of", "require_scope"]

log = logging.getLogger(__name__)

ALL_SCOPES = frozenset(ApiToken.Scope.values)


@dataclass(frozen=True)
class Caller:
    user: Any
    token: ApiToken | None
    scopes: frozenset[str]

    @property
    def label(self) -> str:
        """The token's name, or the person's username."""
        return self.token.name if self.token is not None else str(self.user.get_username())

    @property
    def rate_key(self) -> str:
        # The prefix, not the id: ids come back after a delete (SQLite), prefixes are drawn at random.
        return f"token:{self.token.prefix}" if self.token is not None else f"user:{self.user.pk}"


class BearerToken(HttpBearer):
    """``Authorization: Bearer gov_…`` (``manage.py create_api_token``)."""

    def __call__(self, request: HttpRequest) -> Caller | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "invalid_authorization", "Use the header 'Authorization: Bearer <token>'.")
        return self.authenticate(request, value.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Caller:
        try:
            row = token_authenticate(token)
        except TokenRejected as exc:
            log.warning("API token refused (%s) for %s %s", exc.code, request.method, request.path)
            raise ApiError(401, exc.code, exc.message) from None
        return Caller(user=row.user, token=row, scopes=frozenset(row.scopes or ()))


class PersonSession(SessionAuth):
    """A person signed in to the dashboard (browser session); only for GET, so no CSRF question."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Caller | None:
        user = getattr(request, "user", None)
        if not is_active_user(user):
            return None
        return Caller(user=user, token=None, scopes=ALL_SCOPES)


def caller_of(request: HttpRequest) -> Caller:
    caller = getattr(request, "auth", None)
    if not isinstance(caller, Caller):  # pragma: no cover - every operation requires auth
        raise ApiError(401, "unauthenticated", "Send a bearer token or sign in.")
    return caller


def require_scope(request: HttpRequest, scope: str) -> Caller:
    """The caller, if their token has ``scope``; else a 403."""
    caller = caller_of(request)
    if scope not in caller.scopes:
        raise ApiError(
            403,
            "insufficient_scope",
            f"The token {caller.label} lacks the scope {scope} (it has: {', '.join(sorted(caller.scopes)) or 'none'}).",
        )
    return caller
