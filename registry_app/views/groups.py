"""Model package groups: the list (with htmx live search) and one group's versions."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from registry_app.mirror import selectors
from registry_app.notifications.selectors import is_watching
from registry_app.permissions import can_archive
from registry_app.review.compare import group_trends
from registry_app.review.finding_list import conditions_of, group_finding_summary
from registry_app.review.revalidation_read import revalidation_clocks
from registry_app.review.statuses import version_statuses
from registry_app.views.forms import GroupFilterForm
from registry_app.views.params import cleaned, source_name


def wants_partial(request: HttpRequest) -> bool:
    """htmx asked for a fragment: not a boosted navigation and not a history-cache miss (which needs the page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


@require_GET
@login_required
def group_list(request: HttpRequest) -> HttpResponse:
    form = GroupFilterForm(request.GET)
    cleaned(form, title="Model package groups")
    listing = selectors.group_listing(form.filters())
    template = "registry_app/group_list.html"
    if wants_partial(request):
        template += "#group_table"
    response = render(request, template, {"form": form, "listing": listing})
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
@login_required
def group_detail(request: HttpRequest, group_name: str) -> HttpResponse:
    detail = selectors.group_detail(request.user, name=group_name, source_name=source_name(request))
    if detail is None:
        raise Http404("No such model package group")
    group = detail.group
    statuses = version_statuses([row.package for row in detail.versions])
    clocks = revalidation_clocks([row.package for row in detail.versions])
    findings = group_finding_summary(group.pk, [row.package.version for row in detail.versions])
    conditions = conditions_of([row.package.pk for row in detail.versions])
    for row in detail.versions:
        row.status = statuses[row.package.pk]  # type: ignore[attr-defined]
        row.revalidation = clocks[row.package.pk]  # type: ignore[attr-defined]
        row.findings = findings.get(row.package.version)  # type: ignore[attr-defined]
        row.conditions = conditions.get(row.package.pk, [])  # type: ignore[attr-defined]
    context = {
        "detail": detail,
        "group": group,
        "can_archive": can_archive(request.user, group),
        "watching": is_watching(request.user, group),
        "trends": group_trends(detail.versions),
    }
    return render(request, "registry_app/group_detail.html", context)
