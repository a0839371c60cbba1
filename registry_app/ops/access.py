"""Who may read ``/metrics`` and ``/readyz``'s details: the bearer token, and loopback in DEBUG only.

``/metrics`` with ``METRICS_TOKEN`` set: ``Authorization: Bearer <token>`` from anywhere. DEBUG off
and no token: not served (``log_metrics_mode`` says so at start-up). DEBUG on and no token (the
demo): only requests made straight to the process from loopback, never through a proxy, and never
when ``TRUSTED_PROXY_COUNT`` says the app is behind one.

``/readyz`` answers everyone with ``ready`` / ``not ready``; its per-check details (broker address,
source names, sync times) go only to staff and to the metrics token (``sees_details``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from django.conf import settings
from django.http import HttpRequest

log = logging.getLogger(__name__)


class Access(Enum):
    ALLOWED = "allowed"
    UNAUTHORIZED = "unauthorized"  # a token is configured and the request did not present it
    FORBIDDEN = "forbidden"  # DEBUG on, no token: only direct loopback requests are served
    DISABLED = "disabled"  # DEBUG off and no token: /metrics is not served at all


# Any of these means the request came through a proxy (present at all, even empty): a proxy in front
# of the app makes every request arrive from its address, often loopback. nginx's plain proxy_pass
# adds none of them, which is why loopback serving is for DEBUG (the demo) only.
_PROXY_HEADER = re.compile(
    r"HTTP_(?:X_FORWARDED_\w+|FORWARDED|VIA|X_REAL_IP|\w*CLIENT_IP|\w*CONNECTING_IP|X_ORIGINAL_\w+|X_ENVOY_\w+)"
)


def proxied(meta: Mapping[str, Any]) -> bool:
    return any(_PROXY_HEADER.fullmatch(name) for name in meta)


def bearer_ok(token: str, authorization: str) -> bool:
    """``Authorization: Bearer <token>`` (scheme in any case), compared in constant time."""
    scheme, _, presented = authorization.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def metrics_access(*, token: str, authorization: str, remote_addr: str, proxied: bool, debug: bool) -> Access:
    """Who may scrape.

    With ``METRICS_TOKEN`` set: a request with ``Authorization: Bearer <token>``, from anywhere.
    Without it and with DEBUG off: nobody (production must set a token; the process logs that
    metrics are disabled when it starts). Without it and with DEBUG on (the demo): only a request
    made straight to the process from a loopback address, never one that came through a proxy.
    """
    if token:
        return Access.ALLOWED if bearer_ok(token, authorization) else Access.UNAUTHORIZED
    if not debug:
        return Access.DISABLED
    try:
        loopback = ipaddress.ip_address(remote_addr).is_loopback
    except ValueError:
        loopback = False
    return Access.ALLOWED if loopback and not proxied else Access.FORBIDDEN


def request_metrics_access(request: HttpRequest) -> Access:
    return metrics_access(
        token=settings.METRICS_TOKEN,
        authorization=request.headers.get("Authorization", ""),
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        proxied=proxied(request.META) or int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0) > 0,
        debug=settings.DEBUG,
    )


def sees_details(request: HttpRequest) -> bool:
    """Staff (read only with a session cookie, so probes load no session) or the metrics token."""
    if bearer_ok(settings.METRICS_TOKEN, request.headers.get("Authorization", "")):
        return True
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


_mode_logged = False


def log_metrics_mode() -> None:
    """Once per process: say at start-up when /metrics is disabled (DEBUG off, no METRICS_TOKEN)."""
    global _mode_logged
    if _mode_logged:
        return
    _mode_logged = True
    if not settings.METRICS_TOKEN and not settings.DEBUG:
        log.warning("/metrics is disabled: set METRICS_TOKEN to serve it (to scrapers sending the bearer token)")
