"""URLs of ``/api/v1/`` (included by ``governance/urls.py``)."""

from __future__ import annotations

from django.urls import path, re_path

from registry_app.api.app import api, not_found

urlpatterns = [
    path("api/v1/", not_found),  # ninja's own root view answers an HTML 404; this one answers JSON
    path("api/v1/", api.urls),
    re_path(r"^api/v1/", not_found),
]
