"""One model package version: metadata, card, evaluation reports, deployments and history."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from registry_app import selectors


@require_GET
@login_required
def package_detail(request: HttpRequest, group_name: str, version: int) -> HttpResponse:
    detail = selectors.package_detail(
        group_name=group_name, version=version, source_name=request.GET.get("source") or None
    )
    if detail is None:
        raise Http404("No such model package version")
    return render(request, "registry_app/package_detail.html", {"detail": detail, "package": detail.package})
