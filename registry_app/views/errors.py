"""Input errors answered as ours: a 400 page naming each field (JSON when JSON was asked for), 413
for an oversized body, and never Django's DEBUG page.

``InputErrorMiddleware`` sits after ``AuthenticationMiddleware`` (the page shows the navigation):

* before the view: a NUL character anywhere in the path, a parameter or a form field is refused
  with 400 (PostgreSQL cannot store or compare text holding one: any query would fail). A body
  over ``REQUEST_BODY_MAX_BYTES`` (by its ``Content-Length``) is refused with 413 unread, whatever
  its type: Django caps urlencoded bodies and multipart *fields* (``DATA_UPLOAD_MAX_MEMORY_SIZE``)
  but streams multipart *files* to disk without a limit, and the dashboard takes no uploads. A
  form body is parsed here, so a malformed or oversized one is answered here too rather than
  inside the CSRF check, where Django would show its DEBUG page;
* from the view: ``BadParameter`` (registry_app/views/params.py), Django's ``BadRequest`` and
  ``SuspiciousOperation`` (a forged OIDC state, too many fields...) become the same 400 page.
  Suspicious operations are still logged on ``django.security.<name>``, as Django would.

``HostGuardMiddleware`` (first of all) answers a ``Host`` header outside ``ALLOWED_HOSTS`` with a
plain 400 before Django's own middleware would raise ``DisallowedHost`` (which DEBUG shows as its
technical page, settings included).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render

from registry_app.views.params import BadParameter

TEMPLATE = "registry_app/bad_request.html"
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def wants_json(request: HttpRequest) -> bool:
    """An export asked for as JSON, or a client that accepts JSON and not HTML."""
    if _is_api(request):
        return True
    accept = request.headers.get("Accept", "")
    return request.GET.get("format") == "json" or ("application/json" in accept and "text/html" not in accept)


def _is_api(request: HttpRequest) -> bool:
    """The deploy-gate API (``/api/``) answers every error as ``{"error": code, "detail": ...}``."""
    return request.path.startswith("/api/")


def input_error(
    request: HttpRequest, errors: Mapping[str, list[str]], *, title: str = "", status: int = 400
) -> HttpResponse:
    """The 400 (or 413) answer: each field with what it accepts."""
    title = title or "This request could not be understood"
    if _is_api(request):
        code = "payload_too_large" if status == 413 else "bad_request"
        return JsonResponse({"error": code, "detail": title, "fields": dict(errors)}, status=status)
    if wants_json(request):
        return JsonResponse({"error": title, "fields": dict(errors)}, status=status)
    context = {"title": title, "errors": dict(errors), "status": status}
    return render(request, TEMPLATE, context, status=status)


def _too_large(request: HttpRequest, size: int | None = None) -> HttpResponse:
    limit = settings.REQUEST_BODY_MAX_BYTES
    said = f"{size:,} bytes" if size is not None else "larger than allowed"
    message = f"The request body is {said}; at most {limit:,} bytes are accepted."
    return input_error(request, {"request": [message]}, title="Request too large", status=413)


def _content_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0  # Django reads such a body as empty


class InputErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        size = _content_length(request)
        if size > settings.REQUEST_BODY_MAX_BYTES:
            return _too_large(request, size)
        if request.method == "POST" and request.content_type in FORM_TYPES:
            try:
                request.POST  # noqa: B018 - parse now; errors are answered below, not from the CSRF check
            except RequestDataTooBig:
                return _too_large(request, size)
            except (TooManyFieldsSent, TooManyFilesSent, MultiPartParserError) as exc:
                _log_suspicious(request, exc)
                return input_error(request, {"request": ["The form data is malformed or has too many fields."]})
        nul = _nul_field(request)
        if nul is not None:
            return input_error(request, {nul: ["NUL characters (%00) are not accepted."]})
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, BadParameter):
            return input_error(request, exception.errors, title=exception.title)
        if isinstance(exception, RequestDataTooBig):
            return _too_large(request)
        if isinstance(exception, SuspiciousOperation | BadRequest):
            if isinstance(exception, SuspiciousOperation):
                _log_suspicious(request, exception)
            return input_error(request, {"request": ["This request could not be understood; start again."]})
        return None


def _nul_field(request: HttpRequest) -> str | None:
    """The first place holding a NUL character (PostgreSQL refuses them in text: a 500 in any query)."""
    if "\x00" in request.path:
        return "address"
    for params in (request.GET, request.POST) if request.method == "POST" else (request.GET,):
        for key, values in params.lists():
            if "\x00" in key or any("\x00" in value for value in values if isinstance(value, str)):
                return key.replace("\x00", "?")[:64]
    return None


def _log_suspicious(request: HttpRequest, exc: Exception) -> None:
    extra: dict[str, Any] = {"status_code": 400, "request": request}
    logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc), extra=extra)


class HostGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost as exc:
            _log_suspicious(request, exc)
            return HttpResponseBadRequest("This site is not served under that host name.\n", content_type="text/plain")
        return self.get_response(request)
