"""Review queues: "My queue", "All pending" and "Recently decided", paged, with live refresh through htmx."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from registry_app.permissions import SIGNOFF_ROLES
from registry_app.review.finding_queue import findings_page
from registry_app.review.queue import DECIDED_DAYS, SLA_LABELS, TABS, QueueFilters, TagFilter, queue_page
from registry_app.views.groups import wants_partial
from registry_app.views.params import cleaned

QUEUE_TEMPLATE = "registry_app/queue.html"
FINDINGS_TEMPLATE = "registry_app/queue_findings.html"
QUEUE_TABS = {**TABS, "findings": "Findings"}


@dataclass(frozen=True)
class QueueQuery:
    tab: str
    group: str
    tag: str
    role: str
    sla: str
    not_mine: bool
    after: str
    more: bool
    mine: bool = False  # findings tab: mine as owner
    overdue: bool = False  # findings tab: overdue only

    @property
    def filters(self) -> QueueFilters:
        return QueueFilters(
            group=self.group, tag=TagFilter.parse(self.tag), role=self.role, sla=self.sla, not_mine=self.not_mine
        )


class QueueFilterForm(forms.Form):
    tab = forms.ChoiceField(required=False, choices=list(QUEUE_TABS.items()))
    group = forms.CharField(required=False, max_length=170, strip=True, label="Group")
    tag = forms.CharField(required=False, max_length=400, strip=True, label="Group tag")
    role = forms.CharField(required=False, max_length=64, strip=True, label="Missing role")
    sla = forms.ChoiceField(required=False, choices=[("", "Any"), *SLA_LABELS.items()], label="SLA")
    not_mine = forms.BooleanField(required=False, label="Not registered by me")
    after = forms.CharField(required=False, max_length=80)
    more = forms.BooleanField(required=False)  # htmx "load more": the next rows only, no count
    mine = forms.BooleanField(required=False)
    overdue = forms.BooleanField(required=False)

    def values(self) -> QueueQuery:
        """The valid parameters; invalid input is refused with a 400 naming the field."""
        data = cleaned(self, title="Review queue")
        return QueueQuery(
            tab=data.get("tab") or "mine",
            group=data.get("group") or "",
            tag=data.get("tag") or "",
            role=data.get("role") or "",
            sla=data.get("sla") or "",
            not_mine=bool(data.get("not_mine")),
            after=data.get("after") or "",
            more=bool(data.get("more")),
            mine=bool(data.get("mine")),
            overdue=bool(data.get("overdue")),
        )


@require_GET
@login_required
def queue(request: HttpRequest) -> HttpResponse:
    query = QueueFilterForm(request.GET).values()
    if query.tab == "findings":
        return _findings_tab(request, query)
    partial = wants_partial(request)
    more = partial and query.more
    page = queue_page(request.user, tab=query.tab, filters=query.filters, after=query.after, count=not more)
    template = QUEUE_TEMPLATE + ("#queue_rows" if more else "#queue_list" if partial else "")
    context = {
        "page": page,
        "items": page.items,
        "q": query,
        "tab": query.tab,
        "tabs": list(QUEUE_TABS.items()),
        "filtered": query.filters.active,
        "sla_choices": list(SLA_LABELS.items()),
        "sla_label": SLA_LABELS.get(query.sla, ""),
        "role_choices": list(SIGNOFF_ROLES),
        "decided_days": DECIDED_DAYS,
    }
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _findings_tab(request: HttpRequest, query: QueueQuery) -> HttpResponse:
    """The "Findings" tab: open findings, mine as owner and/or overdue, a page at a time."""
    page = findings_page(request.user, mine=query.mine, overdue=query.overdue, after=query.after)
    context = {"page": page, "q": query, "tab": "findings", "tabs": list(QUEUE_TABS.items())}
    response = render(request, FINDINGS_TEMPLATE, context)
    patch_vary_headers(response, ("HX-Request",))
    return response
