"""The forms of the finding actions and the conditions section of the sign-off form (no view here:
``views.review`` and ``views.findings`` both use them)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import QueryDict

from registry_app.models import Finding
from registry_app.review.finding_list import user_id_by_username
from registry_app.review.findings import MAX_CONDITIONS, MAX_TEXT, ConditionInput

CONDITION_ROWS = 2  # blank condition rows the sign-off form offers


def _message(form: forms.Form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


class FindingForm(forms.Form):
    title = forms.CharField(max_length=200, strip=True)
    description = forms.CharField(required=False, max_length=MAX_TEXT, strip=True)
    severity = forms.ChoiceField(choices=Finding.Severity.choices)
    owner = forms.CharField(required=False, max_length=150, strip=True, label="Owner (username)")
    owner_email = forms.EmailField(required=False, label="Owner (team e-mail)")
    due_date = forms.DateField(required=False)
    blocks = forms.ChoiceField(
        required=False, choices=[("", "Policy default"), ("yes", "Blocks approval"), ("no", "Does not block")]
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        owner = data.get("owner") or ""
        data["owner_id"] = user_id_by_username(owner) if owner else None
        if owner and data["owner_id"] is None:
            self.add_error("owner", f"No active user is named {owner[:60]!r}.")
        if not owner and not data.get("owner_email"):
            self.add_error("owner", "Give an owner: a username, a team e-mail address, or both.")
        return data


class CloseForm(forms.Form):
    comment = forms.CharField(
        max_length=MAX_TEXT, strip=True, error_messages={"required": "A closing comment is required."}
    )
    evidence_url = forms.URLField(
        max_length=2000, assume_scheme="https", error_messages={"required": "A link to the evidence is required."}
    )


class AcceptForm(forms.Form):
    justification = forms.CharField(
        max_length=MAX_TEXT, strip=True, error_messages={"required": "A justification is required."}
    )


def conditions_from_post(post: QueryDict) -> tuple[list[ConditionInput], list[int], str]:
    """The approve-with-conditions part of a sign-off form: new conditions (``cond_title_<n>`` with
    ``cond_severity_<n>``, ``cond_owner_<n>``, ``cond_due_<n>``) and references (``cond_ref``).
    Returns (new, refs, error message); a row without a title is ignored."""
    new: list[ConditionInput] = []
    for n in range(MAX_CONDITIONS):
        if not (post.get(f"cond_title_{n}") or "").strip():
            continue
        form = FindingForm(
            {
                "title": post.get(f"cond_title_{n}"),
                "severity": post.get(f"cond_severity_{n}") or "low",
                "owner": post.get(f"cond_owner_{n}") or "",
                "owner_email": post.get(f"cond_owner_email_{n}") or "",
                "due_date": post.get(f"cond_due_{n}") or "",
            }
        )
        if not form.is_valid():
            return [], [], f"Condition {n + 1}: " + _message(form)
        data = form.cleaned_data
        new.append(
            ConditionInput(
                title=data["title"],
                severity=data["severity"],
                due_date=data.get("due_date"),
                owner_id=data.get("owner_id"),
                owner_email=data.get("owner_email") or "",
            )
        )
    refs: list[int] = []
    for raw in post.getlist("cond_ref"):
        if not raw.isdigit() or len(raw) > 12:
            return [], [], f"{raw[:20]!r} is not a finding number."
        refs.append(int(raw))
    return new, refs, ""
