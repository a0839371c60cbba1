"""Review queues: "My queue", "All pending" and "Recently decided", with live refresh through htmx."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from registry_app.review.queue import DECIDED_DAYS, TABS, queue_for_user
from registry_app.views.groups import wants_partial
from registry_app.views.params import cleaned

QUEUE_TEMPLATE = "registry_app/queue.html"


class QueueFilterForm(forms.Form):
    tab = forms.ChoiceField(required=False, choices=list(TABS.items()))
    group = forms.CharField(required=False, max_length=170, strip=True, label="Group")
    tag = forms.CharField(required=False, max_length=400, strip=True, label="Group tag")

    def values(self) -> tuple[str, str, str]:
        """(tab, group, tag); invalid input is refused with a 400 naming the field."""
        data = cleaned(self, title="Review queue")
        return data.get("tab") or "mine", data.get("group") or "", data.get("tag") or ""


@require_GET
@login_required
def queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET)
    tab, group, tag = form.values()
    items = queue_for_user(request.user, tab=tab, group=group, tag=tag)
    template = QUEUE_TEMPLATE + ("#queue_list" if wants_partial(request) else "")
    context = {
        "form": form,
        "items": items,
        "tab": tab,
        "tabs": list(TABS.items()),
        "group": group,
        "tag": tag,
        "decided_days": DECIDED_DAYS,
    }
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response
