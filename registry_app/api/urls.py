"""URLs of ``/api/v1/`` (included by ``governance/urls.py``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.urls import path, re_path

from registry_app.api.app import api, not_found
from registry_app.api.errors import error_body


def _json_405(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """ninja answers a wrong method with Django's plain-text 405; the API answers JSON."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        if response.status_code != 405:
            return response
        allowed = response.get("Allow", "GET")
        answer = JsonResponse(error_body("method_not_allowed", f"Use {allowed}."), status=405)
        answer["Allow"] = allowed
        return answer

    return wrapper


_patterns, _app_name, _namespace = api.urls
for _pattern in _patterns:
    _pattern.callback = _json_405(_pattern.callback)

urlpatterns = [
    path("api/v1/", not_found),  # ninja's own root view answers an HTML 404; this one answers JSON
    path("api/v1/", (_patterns, _app_name, _namespace)),
    re_path(r"^api/v1/", not_found),
]
