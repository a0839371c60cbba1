"""Login throttling on top of django-axes: per account *and* address, plus a per-address ceiling.

* **Account from an address.** axes itself (``AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]``)
  locks a username out from one client address after ``AXES_FAILURE_LIMIT`` failures. Somebody
  elsewhere typing a person's name with wrong passwords locks only their own address out of that
  account: never the person, who logs in from another address.
* **An address, whatever the names.** ``ThrottleHandler`` also locks an address out of *password*
  logins after ``AXES_ADDRESS_FAILURE_LIMIT`` failures in all (password spraying: a few guesses at
  many accounts). Single sign-on stays open from it (the lockout page offers it): the identity
  provider has its own protections, and colleagues behind the same NAT keep a way in.
* **Which address.** ``registry_app.ops.client_ip`` (``AXES_CLIENT_IP_CALLABLE``): the N-th entry from
  the right of ``X-Forwarded-For`` behind ``TRUSTED_PROXY_COUNT`` proxies, else ``REMOTE_ADDR``.
  A request that carries proxy headers while ``TRUSTED_PROXY_COUNT`` is 0 comes from a proxy the
  settings do not know about: every client then shares the proxy's address, so the address-wide
  ceiling would lock everybody out of password logins; it is skipped for such requests (with a
  warning in the log) and the per-account rule still applies.

Both count failures within ``AXES_COOLOFF_MINUTES``; both answer with ``registration/lockout.html``
(HTTP 429), which says which rule applied.
"""

from __future__ import annotations

import logging
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from registry_app.ops.access import proxied

log = logging.getLogger(__name__)

LOCKOUT_TEMPLATE = "registration/lockout.html"
_warned_unknown_proxy = False


def _password_attempt(request: HttpRequest, credentials: dict[str, Any] | None) -> bool:
    """A username/password login (an SSO callback's credentials carry no username)."""
    return bool(get_client_username(request, credentials))


def _address_is_known(request: HttpRequest) -> bool:
    global _warned_unknown_proxy
    if settings.TRUSTED_PROXY_COUNT > 0 or not proxied(request.META):
        return True
    if not _warned_unknown_proxy:
        _warned_unknown_proxy = True
        log.warning(
            "login throttling: requests arrive through a proxy but TRUSTED_PROXY_COUNT is 0; every client "
            "shares the proxy's address, so the per-address limit is skipped: set TRUSTED_PROXY_COUNT"
        )
    return False


def address_failures(request: HttpRequest) -> int:
    """Password-login failures from the request's address within the cool-off, all usernames together."""
    attempts = AccessAttempt.objects.filter(
        ip_address=request.axes_ip_address,  # type: ignore[attr-defined]
        attempt_time__gte=get_cool_off_threshold(request),
        username__isnull=False,
    ).exclude(username="")
    return int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)


def address_locked(request: HttpRequest, credentials: dict[str, Any] | None) -> bool:
    limit = settings.AXES_ADDRESS_FAILURE_LIMIT
    if not limit or not _password_attempt(request, credentials) or not _address_is_known(request):
        return False
    return address_failures(request) >= limit


class ThrottleHandler(AxesDatabaseHandler):
    """axes' database handler with the per-address ceiling for password logins."""

    def is_locked(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
        return super().is_locked(request, credentials) or address_locked(request, credentials)

    def user_login_failed(self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        # The failure that reaches the ceiling is answered with the lockout at once, as axes does
        # for the per-account limit.
        if request is None or getattr(request, "axes_locked_out", False):
            return
        if address_locked(request, credentials):
            log.warning("login throttling: locking out %s after repeated failures", request.axes_ip_address)
            request.axes_locked_out = True
            request.axes_credentials = credentials
            username = get_client_username(request, credentials)
            user_locked_out.send("axes", request=request, username=username, ip_address=request.axes_ip_address)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """HTTP 429: which rule applied, when to try again, and the single sign-on way in."""
    account_locked = ThrottleHandler().get_failures(request, credentials) >= get_failure_limit(request, credentials)
    username = get_client_username(request, credentials) or ""
    context = {
        "username": username,
        "scope": "account" if account_locked or not address_locked(request, credentials) else "address",
        "failure_limit": get_failure_limit(request, credentials),
        "address_failure_limit": settings.AXES_ADDRESS_FAILURE_LIMIT,
        "cooloff_timedelta": get_cool_off(request),
        "sso_enabled": settings.OIDC_ENABLED and bool(username),  # a refused SSO login has no username
        "sso_provider_name": settings.OIDC_PROVIDER_NAME,
        "local_login_enabled": settings.LOCAL_LOGIN_ENABLED,
    }
    return render(request, LOCKOUT_TEMPLATE, context, status=429)
