"""The endpoints list: every live endpoint with what it serves, since when, the version's approval
state and its rollback candidate. Read-only, for any signed-in account."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from registry_app.audit.endpoint_list import EndpointCursor, endpoint_list
from registry_app.review.statuses import version_statuses
from registry_app.views.params import cleaned


class EndpointCursorField(forms.CharField):
    """The "Next" link's position, as this page made it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, max_length=200, **kwargs)

    def clean(self, value: Any) -> EndpointCursor | None:  # type: ignore[override]
        text = super().clean(value)
        if not text:
            return None
        try:
            return EndpointCursor.decode(text)
        except ValueError as exc:
            raise forms.ValidationError(
                "This page link is malformed: use the page's own Next link, or start again from the first page."
            ) from exc


class EndpointListForm(forms.Form):
    after = EndpointCursorField()


@require_GET
@login_required
def endpoint_list_view(request: HttpRequest) -> HttpResponse:
    data = cleaned(EndpointListForm(request.GET), title="Endpoints")
    page = endpoint_list(after=data["after"])
    serving = [s for row in page.rows for s in row.serving if s.package is not None]
    statuses = version_statuses([s.package for s in serving])  # the words of the banner and the queue
    for item in serving:
        item.status = statuses[item.package.pk]  # type: ignore[union-attr]
    return render(request, "registry_app/endpoint_list.html", {"page": page})
