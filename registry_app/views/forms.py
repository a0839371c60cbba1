"""Forms that validate the dashboard's query strings and POST bodies (kept with the views that use them)."""

from __future__ import annotations

from django import forms

from registry_app.mirror.selectors import STATUS_FILTERS, GroupFilters
from registry_app.models import SyncRun


class GroupFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, strip=True, label="Search")
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *((key, label) for key, (_, label) in STATUS_FILTERS.items())],
    )
    source = forms.SlugField(required=False, max_length=64)
    deleted = forms.BooleanField(required=False, label="Show deleted")
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)

    def filters(self) -> GroupFilters:
        """The validated filters (the view refuses invalid input with a 400 naming the field)."""
        data = self.cleaned_data if self.is_valid() else {}
        return GroupFilters(
            query=data.get("q") or "",
            status=data.get("status") or "",
            source=data.get("source") or "",
            show_deleted=bool(data.get("deleted")),
            page=data.get("page") or 1,
        )


class SyncRequestForm(forms.Form):
    mode = forms.ChoiceField(
        choices=[(SyncRun.Mode.INCREMENTAL, "Sync now"), (SyncRun.Mode.FULL, "Full reconciliation")],
    )
