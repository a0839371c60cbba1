"""Versions of a group side by side: ``/groups/<group>/compare/?versions=3,5`` (or ``versions=3&versions=5``,
as the group page's checkboxes send it). Anyone who may see the group page may see the comparison.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from registry_app.mirror.lookups import find_group
from registry_app.models import ModelPackageGroup
from registry_app.review.compare import MAX_VERSIONS, MIN_VERSIONS, compare_versions
from registry_app.views.params import source_name

TITLE = "Compare versions"


class CompareForm(forms.Form):
    """``versions``: two to ``MAX_VERSIONS`` distinct version numbers, comma-separated or repeated."""

    versions = forms.CharField(max_length=200, error_messages={"required": "Choose at least two versions."})

    def clean_versions(self) -> list[int]:
        parts = [part.strip() for part in self.cleaned_data["versions"].split(",") if part.strip()]
        if not all(part.isascii() and part.isdigit() and len(part) <= 9 for part in parts):
            raise forms.ValidationError("Use version numbers separated by commas, e.g. 3,5.")
        numbers = sorted({int(part) for part in parts})
        if len(numbers) < MIN_VERSIONS:
            raise forms.ValidationError(f"Choose at least {MIN_VERSIONS} different versions.")
        if len(numbers) > MAX_VERSIONS:
            raise forms.ValidationError(f"Compare at most {MAX_VERSIONS} versions at a time.")
        return numbers

    @classmethod
    def from_query(cls, request: HttpRequest) -> CompareForm:
        """Both spellings: ``versions=3,5`` and ``versions=3&versions=5`` (checkboxes)."""
        values = request.GET.getlist("versions")
        return cls({"versions": ",".join(values)} if values else {})


def _invalid(request: HttpRequest, group: ModelPackageGroup, errors: dict[str, list[str]]) -> HttpResponse:
    """400 naming the field, with the way back to the group page's checkboxes (not a dead end)."""
    context = {"group": group, "errors": errors, "title": TITLE}
    return render(request, "registry_app/compare_invalid.html", context, status=400)


@require_GET
@login_required
def group_compare(request: HttpRequest, group_name: str) -> HttpResponse:
    source = source_name(request, title=TITLE)
    group = find_group(request.user, name=group_name, source_name=source)
    if group is None:
        raise Http404("No such model package group")
    form = CompareForm.from_query(request)
    if not form.is_valid():
        return _invalid(request, group, {name: list(messages) for name, messages in form.errors.items()})
    comparison = compare_versions(group, form.cleaned_data["versions"])
    if comparison.missing:
        shown = ", ".join(f"v{v}" for v in comparison.missing)
        return _invalid(request, group, {"versions": [f"This group has no version {shown}."]})
    return render(request, "registry_app/compare.html", {"group": group, "comparison": comparison})
