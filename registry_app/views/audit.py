"""Audit pages: timelines (package, group, endpoint), the audit search, the as-of answer, decisions
made outside the dashboard, and their exports and auditor packs.

All pages need a login and only read. ``?format=csv|json|print`` and the ``pack.zip`` downloads are
for staff and the compliance role (403 otherwise). Each view validates a small form, checks the
permission, calls one selector or export, and renders the page or, for htmx, one partial.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from registry_app.audit import exports, packs
from registry_app.audit.anchors import anchor_head
from registry_app.audit.as_of import as_of as as_of_answer
from registry_app.audit.endpoints import endpoint_overview
from registry_app.audit.outside_list import BEFORE, DURING, PHASE_NOTES, PHASES, outside_page, outside_stream
from registry_app.audit.outside_list import STREAMS as OUTSIDE_STREAMS
from registry_app.audit.paging import Cursor
from registry_app.audit.params import EARLIEST_INPUT, LATEST_INPUT, parse_when
from registry_app.audit.search import SearchFilters, audit_search_stream
from registry_app.audit.search import audit_search as audit_search_page
from registry_app.audit.timeline import (
    Scope,
    TimelineFilters,
    endpoint_scope,
    group_scope,
    package_scope,
    timeline_page,
    timeline_stream,
)
from registry_app.audit.timeline_items import KINDS
from registry_app.mirror.lookups import find_group, find_package
from registry_app.models import AuditAnchor, EndpointDeployment
from registry_app.models.registry import ApprovalStatus, Endpoint
from registry_app.views.errors import input_error, wants_json
from registry_app.views.groups import wants_partial
from registry_app.views.params import BadParameter, source_name

TIMELINE_TEMPLATE = "registry_app/audit/partials/timeline.html"
PERIOD_PACK_DEFAULT_DAYS = 30
PERIOD_PACK_MAX_DAYS = 400
ENDPOINT_CHOICES_SHOWN = 500


# --------------------------------------------------------------------------------------------- forms


class CursorField(forms.CharField):
    """A page link's position, as this page made it (``outside``: the bypasses list's, whose entries
    are flagged rows and CloudTrail calls, else a timeline's)."""

    def __init__(self, *, outside: bool = False, **kwargs: Any) -> None:
        self.outside = outside
        super().__init__(required=False, max_length=400, **kwargs)

    def clean(self, value: Any) -> Cursor | None:  # type: ignore[override]
        text = super().clean(value)
        if not text:
            return None
        try:
            cursor = Cursor.decode(text)
        except ValueError as exc:
            raise forms.ValidationError(self.malformed) from exc
        allowed = cursor.source in OUTSIDE_STREAMS if self.outside else cursor.source != "outside"
        if not allowed:
            raise forms.ValidationError(self.malformed)  # another list's link: its ids mean other rows
        return cursor

    malformed = "This page link is malformed: use the page's own Older/Newer links, or start again from the newest."


class WhenField(forms.CharField):
    """An ISO-8601 date or datetime (naive means UTC), as ``<input type="datetime-local">`` sends it or typed."""

    def __init__(self, *, end: bool = False, **kwargs: Any) -> None:
        self.end = end
        kwargs.setdefault("required", False)
        super().__init__(max_length=64, **kwargs)

    def clean(self, value: Any) -> dt.datetime | None:  # type: ignore[override]
        text = super().clean(value)
        try:
            return parse_when(text, end=self.end)
        except ValueError as exc:
            raise forms.ValidationError(
                f"Use an ISO-8601 date or time between {EARLIEST_INPUT:%Y-%m-%d} and {LATEST_INPUT:%Y-%m-%d}"
                " (UTC unless an offset is given), e.g. 2025-03-14T09:30 (the date picker's), 2025-03-14"
                " or 2025-03-14T09:30Z."
            ) from exc


FORMAT_CHOICES = [("", "page"), *((f, f) for f in exports.FORMATS)]


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False)


class TimelineForm(ExportForm):
    kind = forms.MultipleChoiceField(choices=list(KINDS.items()), required=False)
    actor = forms.CharField(required=False, max_length=256, strip=True)
    before = CursorField()
    after = CursorField()

    def filters(self) -> TimelineFilters:
        data = self.cleaned_data
        return TimelineFilters(
            kinds=tuple(data["kind"]), actor=data["actor"], before=data["before"], after=data["after"]
        )


class SearchForm(ExportForm):
    actor = forms.CharField(required=False, max_length=256, strip=True)
    event = forms.CharField(required=False, max_length=128, strip=True, label="Event or action")
    resource = forms.CharField(required=False, max_length=2048, strip=True)
    since = WhenField()
    until = WhenField(end=True)
    kind = forms.MultipleChoiceField(choices=[("cloudtrail", "CloudTrail"), ("audit", "Audit log")], required=False)
    before = CursorField()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end of the range is before its start.")
        return data

    def filters(self) -> SearchFilters:
        data = self.cleaned_data
        return SearchFilters(
            actor=data["actor"],
            event=data["event"],
            resource=data["resource"],
            since=data["since"],
            until=data["until"],
            kinds=tuple(data["kind"]),
            before=data["before"],
        )


class AsOfForm(ExportForm):
    endpoint = forms.CharField(max_length=63, strip=True)
    at = WhenField(required=True, label="At (UTC unless an offset is given)")


class BypassForm(ExportForm):
    status = forms.ChoiceField(choices=[("", "Any status"), *ApprovalStatus.choices], required=False)
    governance = forms.ChoiceField(
        choices=[("", "Before or while governed"), (BEFORE, PHASES[BEFORE]), (DURING, PHASES[DURING])], required=False
    )
    before = CursorField(outside=True)


class PeriodForm(forms.Form):
    since = WhenField()
    until = WhenField(end=True)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        until = data.get("until") or timezone.now()
        since = data.get("since") or until - dt.timedelta(days=PERIOD_PACK_DEFAULT_DAYS)
        if since > until:
            self.add_error("until", "The end of the period is before its start.")
        elif until - since > dt.timedelta(days=PERIOD_PACK_MAX_DAYS):
            self.add_error("since", f"A pack covers at most {PERIOD_PACK_MAX_DAYS} days; split the period.")
        data["since"], data["until"] = since, until
        return data


# --------------------------------------------------------------------------------------------- helpers


def _require_export(request: HttpRequest) -> None:
    """Exports are for compliance and staff; each one anchors the audit chain's head outside the
    database first (an auditor's copy then always has a matching anchor to check against)."""
    if not exports.can_export(request.user):
        raise PermissionDenied("Exports and auditor packs are for compliance officers and staff.")
    anchor_head(AuditAnchor.Reason.EXPORT)


def _bad_request(form: forms.Form, title: str) -> BadParameter:
    return BadParameter.from_form(form, title=title)


def _export_items(
    request: HttpRequest, fmt: str, *, title: str, stem: str, meta: dict[str, Any], stream: Any
) -> HttpResponseBase:
    """CSV / JSON / printable export of timeline items; ``stream()`` is called once per format pass."""
    return exports.export_response(
        request,
        fmt,
        title=title,
        stem=stem,
        meta=meta,
        columns=exports.TIMELINE_COLUMNS,
        print_columns=exports.PRINT_COLUMNS,
        rows=lambda: exports.timeline_rows(stream()),
        json_items=lambda: (item.export_row() for item in stream()),
    )


def _timeline(
    request: HttpRequest, scope: Scope, *, template: str, context: dict[str, Any], stem: str
) -> HttpResponseBase:
    form = TimelineForm(request.GET)
    if not form.is_valid():
        raise _bad_request(form, f"Timeline of {scope.title}")
    filters = form.filters()
    fmt = form.cleaned_data["format"]
    if fmt:
        _require_export(request)
        return _export_items(
            request,
            fmt,
            title=f"Audit timeline: {scope.title}",
            stem=f"timeline-{stem}",
            meta={"scope": scope.title, "kinds": ",".join(filters.kinds) or "all", "actor": filters.actor or "any"},
            stream=lambda: timeline_stream(scope, filters),
        )
    page = timeline_page(scope, filters)
    context = {**context, "page": page, "form": form, "can_export": exports.can_export(request.user)}
    if wants_partial(request):
        template = TIMELINE_TEMPLATE + ("#newer_rows" if filters.after else "#rows")
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


# --------------------------------------------------------------------------------------------- timelines


@require_GET
@login_required
def package_audit(request: HttpRequest, group_name: str, version: int) -> HttpResponseBase:
    package = find_package(request.user, group_name=group_name, version=version, source_name=source_name(request))
    if package is None:
        raise Http404("No such model package version")
    return _timeline(
        request,
        package_scope(package),
        template="registry_app/audit/package_timeline.html",
        context={"package": package, "group": package.group},
        stem=f"{group_name}-v{version}",
    )


@require_GET
@login_required
def group_audit(request: HttpRequest, group_name: str) -> HttpResponseBase:
    group = find_group(request.user, name=group_name, source_name=source_name(request))
    if group is None:
        raise Http404("No such model package group")
    return _timeline(
        request,
        group_scope(group),
        template="registry_app/audit/group_timeline.html",
        context={"group": group},
        stem=group_name,
    )


@require_GET
@login_required
def endpoint_detail(request: HttpRequest, name: str) -> HttpResponseBase:
    overview = endpoint_overview(name)
    if overview is None:
        raise Http404("No such endpoint")
    return _timeline(
        request,
        endpoint_scope(name),
        template="registry_app/audit/endpoint_detail.html",
        context={"overview": overview},
        stem=f"endpoint-{name}",
    )


# --------------------------------------------------------------------------------------------- search, as of, bypasses


@require_GET
@login_required
def audit_search(request: HttpRequest) -> HttpResponseBase:
    form = SearchForm(request.GET)
    if not form.is_valid():
        raise _bad_request(form, "Audit search")
    filters = form.filters()
    fmt = form.cleaned_data["format"]
    if fmt:
        _require_export(request)
        return _export_items(
            request,
            fmt,
            title="Audit search",
            stem="audit-search",
            meta=filters.as_query(),
            stream=lambda: audit_search_stream(filters),
        )
    result = audit_search_page(filters)
    template = "registry_app/audit/search.html" + ("#results" if wants_partial(request) else "")
    response = render(
        request, template, {"form": form, "result": result, "can_export": exports.can_export(request.user)}
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


AS_OF_COLUMNS = ("endpoint", "at", "variant", "package_arn", "fact", "value", "evidence_ids", "missing")


def _endpoint_names() -> list[str]:
    names = set(Endpoint.objects.order_by("name").values_list("name", flat=True)[:ENDPOINT_CHOICES_SHOWN])
    names |= set(
        EndpointDeployment.objects.order_by("endpoint_name")
        .values_list("endpoint_name", flat=True)
        .distinct()[:ENDPOINT_CHOICES_SHOWN]
    )
    return sorted(names)


@require_GET
@login_required
def as_of(request: HttpRequest) -> HttpResponseBase:
    form = AsOfForm(request.GET) if request.GET else AsOfForm()
    answer = None
    if form.is_bound:
        if not form.is_valid():
            if wants_json(request):
                return input_error(request, BadParameter.from_form(form).errors, title="As of")
            return render(
                request, "registry_app/audit/as_of.html", {"form": form, "endpoints": _endpoint_names()}, status=400
            )
        answer = as_of_answer(form.cleaned_data["endpoint"], form.cleaned_data["at"])
        fmt = form.cleaned_data["format"]
        if fmt:
            _require_export(request)
            return exports.export_response(
                request,
                fmt,
                title=f"As of {answer.at.isoformat()}: {answer.endpoint_name}",
                stem=f"as-of-{answer.endpoint_name}-{answer.at:%Y%m%dT%H%M%SZ}",
                meta={"endpoint": answer.endpoint_name, "at": answer.at.isoformat()},
                columns=AS_OF_COLUMNS,
                rows=answer.fact_rows,
                json_items=lambda: [answer.as_dict()],
            )
    context = {
        "form": form,
        "answer": answer,
        "endpoints": _endpoint_names(),
        "can_export": exports.can_export(request.user),
    }
    return render(request, "registry_app/audit/as_of.html", context)


BYPASS_COLUMNS = (
    "group",
    "version",
    "package_arn",
    "from_status",
    "to_status",
    "observed_at",
    "changed_at",
    "actor_name",
    "actor_arn",
    "cloudtrail_event_id",
    "notified_at",
    "evidence_id",
    "entry",
    "governance",
)


@require_GET
@login_required
def bypasses(request: HttpRequest) -> HttpResponseBase:
    form = BypassForm(request.GET)
    if not form.is_valid():
        raise _bad_request(form, "Decided outside the dashboard")
    status, phase = form.cleaned_data["status"], form.cleaned_data["governance"]
    fmt = form.cleaned_data["format"]
    if fmt:
        _require_export(request)
        return exports.export_response(
            request,
            fmt,
            title="Model packages decided outside the dashboard",
            stem="outside-decisions",
            meta={"to_status": status or "any", "governance": phase or "any"},
            columns=BYPASS_COLUMNS,
            rows=lambda: (entry.export_row() for entry in outside_stream(to_status=status, phase=phase)),
        )
    page = outside_page(to_status=status, phase=phase, before=form.cleaned_data["before"])
    context = {
        "form": form,
        "page": page,
        "phases": PHASES,
        "notes": PHASE_NOTES,
        "can_export": exports.can_export(request.user),
    }
    return render(request, "registry_app/audit/bypasses.html", context)


# --------------------------------------------------------------------------------------------- packs


@require_GET
@login_required
def package_audit_pack(request: HttpRequest, group_name: str, version: int) -> HttpResponseBase:
    _require_export(request)
    package = find_package(request.user, group_name=group_name, version=version, source_name=source_name(request))
    if package is None:
        raise Http404("No such model package version")
    file, filename = packs.package_pack(package, user=request.user)
    return packs.pack_response(file, filename)


@require_GET
@login_required
def audit_period_pack(request: HttpRequest) -> HttpResponseBase:
    _require_export(request)
    form = PeriodForm(request.GET)
    if not form.is_valid():
        raise _bad_request(form, "Auditor pack for a period")
    file, filename = packs.period_pack(form.cleaned_data["since"], form.cleaned_data["until"], user=request.user)
    return packs.pack_response(file, filename)
