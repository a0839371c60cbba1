"""Every error of the API is JSON ``{"error": <code>, "detail": <text>}`` with the right 4xx.

``ApiError`` is what handlers raise; ``install_handlers`` maps it, ninja's own errors (auth,
throttling, validation) and ``Http404`` to that shape. Anything else is a bug and propagates as a
500 (never with a traceback in the body: ``DEBUG`` is off in production).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

__all__ = ["ApiError", "error_body", "install_handlers"]

MAX_DETAIL = 500


class ApiError(HttpError):
    """An answer other than 200. ``extra`` adds fields to the body (e.g. ``skipped``)."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(status, detail)
        self.code = code
        self.detail = detail
        self.extra = extra


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail[:MAX_DETAIL], **extra}


def _api_error(api: NinjaAPI, request: HttpRequest, exc: ApiError) -> HttpResponse:
    response = api.create_response(request, error_body(exc.code, exc.detail, **exc.extra), status=exc.status_code)
    if exc.status_code == 401:
        response["WWW-Authenticate"] = f'Bearer realm="api", error="{exc.code}"'
    return response


def _http_error(api: NinjaAPI, request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc, ApiError):
        return _api_error(api, request, exc)
    if isinstance(exc, AuthenticationError):
        return _api_error(api, request, ApiError(401, "unauthenticated", "Send a bearer token or sign in."))
    if isinstance(exc, Throttled):
        wait = f" Retry in {int(exc.wait) + 1} s." if exc.wait is not None else ""
        return _api_error(api, request, ApiError(429, "rate_limited", f"Too many requests for this token.{wait}"))
    code = {403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return _api_error(api, request, ApiError(exc.status_code, code, str(exc)))


def _validation_error(api: NinjaAPI, request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = []
    for error in exc.errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("query", "path")]
        fields.append(".".join(loc) or "request")
    detail = "Invalid value for " + ", ".join(sorted(set(fields))) + "." if fields else "Invalid request."
    return _api_error(api, request, ApiError(400, "invalid_parameter", detail))


def _not_found(api: NinjaAPI, request: HttpRequest, exc: Http404) -> HttpResponse:
    return _api_error(api, request, ApiError(404, "not_found", "No such resource."))


def install_handlers(api: NinjaAPI) -> None:
    api.add_exception_handler(HttpError, lambda request, exc: _http_error(api, request, exc))
    api.add_exception_handler(ValidationError, lambda request, exc: _validation_error(api, request, exc))
    api.add_exception_handler(Http404, lambda request, exc: _not_found(api, request, exc))
