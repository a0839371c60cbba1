"""The ``/api/v1/`` API: django-ninja, bearer tokens or a session, a rate limit per caller, one
audit entry per call, JSON errors, and the OpenAPI 3 document at ``/api/v1/openapi.json``.

docs/deploy-gate.md is the guide for pipeline authors.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from ninja import NinjaAPI

from registry_app.api.audit import audited, record
from registry_app.api.auth import BearerToken, Caller, PersonSession
from registry_app.api.errors import ApiError, error_body, install_handlers
from registry_app.api.routes import gate, registry
from registry_app.api.throttling import PerCallerThrottle

__all__ = ["api", "not_found"]

DESCRIPTION = """\
Ask the governance dashboard whether a model package may be deployed.

Authenticate with `Authorization: Bearer <token>` (a service account's token from
`manage.py create_api_token NAME`), or a signed-in session. Scopes: `read:gate` for the deploy-gate
operations, `read:registry` for the registry listings. Errors are `{"error": <code>, "detail": <text>}`.
"""

_bearer = BearerToken()
_session = PersonSession()


def _json_error(status: int, code: str, detail: str) -> JsonResponse:
    response = JsonResponse(error_body(code, detail), status=status)
    if status == 401:
        response["WWW-Authenticate"] = f'Bearer realm="api", error="{code}"'
    return response


def _authenticated(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """The OpenAPI document needs the same credentials as the operations (no anonymous access)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            caller = _bearer(request) or _session(request)
        except ApiError as exc:
            return _json_error(exc.status_code, exc.code, exc.detail)
        if not isinstance(caller, Caller):
            return _json_error(401, "unauthenticated", "Send a bearer token or sign in.")
        response = view(request, *args, **kwargs)
        record(request, caller, response)
        return response

    return wrapper


api = NinjaAPI(
    title="Model governance deploy gate",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url=None,  # no Swagger UI: it loads scripts from a CDN that the CSP forbids
    docs_decorator=_authenticated,
    auth=[_bearer, _session],
    throttle=[PerCallerThrottle()],
)
install_handlers(api)
for _router in (gate, registry):
    _router.add_decorator(audited, mode="view")
    api.add_router("", _router)


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under /api/v1/ (and the bare root): JSON, not the HTML 404 page."""
    return _json_error(404, "not_found", "No such endpoint; the operations are listed in /api/v1/openapi.json.")
