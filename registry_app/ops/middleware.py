"""Request log context: a request id (taken from X-Request-ID when sane, echoed back) and the user.

Sits after ``AuthenticationMiddleware``. The user is read only when the request carries a session
cookie: a cookie-less request (a load balancer probe, a Prometheus scrape, an anonymous visitor)
is logged with ``user: null`` without loading a session. Requests that do carry one load the
session and user the views would load anyway (``request.user`` caches them for the request).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from registry_app.ops.access import log_metrics_mode
from registry_app.ops.logs import bind, clean_request_id, new_request_id, reset

log = logging.getLogger("registry_app.request")

REQUEST_ID_HEADER = "X-Request-ID"
# Probes and scrapes arrive every few seconds: their "request finished" lines are DEBUG.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _username(request: HttpRequest) -> str | None:
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return str(user.get_username())


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        log_metrics_mode()  # middleware is built when a web process starts: its configuration line

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = clean_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        username = _username(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        request.log_username = username  # type: ignore[attr-defined]  # for logs.ContextFilter
        token = bind(request_id=request_id, user=username)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            log.log(
                logging.DEBUG if request.path in QUIET_PATHS else logging.INFO,
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000.0, 1),
                },
            )
        finally:
            reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response
