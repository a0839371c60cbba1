"""Finding actions on the review page: raise a finding, move it to remediation, close it with
evidence, accept it as a risk; and the conditions section of the sign-off form.

Each view validates a small form, calls one service (which checks permissions again under the row
lock) and answers as the review actions do (``views.review``): a redirect, or for htmx the refreshed
review panel; a refusal re-renders the page or panel with the message and 400/403.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from registry_app.review.finding_list import find_finding
from registry_app.review.findings import (
    FindingNotAllowed,
    finding_accept_risk,
    finding_close,
    finding_raise,
    finding_remediate,
)
from registry_app.review.policy import SignOffNotAllowed
from registry_app.views import review as review_views
from registry_app.views.finding_forms import AcceptForm, CloseForm, FindingForm

# --------------------------------------------------------------------------------------------- views


def _refused(request: HttpRequest, package: Any, exc: Exception, form: forms.Form | None = None) -> HttpResponse:
    return review_views._respond_error(
        request,
        package,
        status=review_views._refusal_status(exc),
        finding_error=review_views._refusal_message(exc),
        finding_form=form,
    )


@login_required
@require_POST
def raise_finding(request: HttpRequest, group_name: str, version: int) -> HttpResponse:
    package = review_views._package_or_404(request, group_name, version)
    form = FindingForm(request.POST)
    if not form.is_valid():
        return review_views._respond_error(
            request, package, status=400, finding_error=review_views.form_message(form), finding_form=form
        )
    data = form.cleaned_data
    try:
        finding = finding_raise(
            user=request.user,
            package_id=package.pk,
            title=data["title"],
            description=data.get("description") or "",
            severity=data["severity"],
            owner_id=data.get("owner_id"),
            owner_email=data.get("owner_email") or "",
            due_date=data.get("due_date"),
            blocks_approval={"yes": True, "no": False}.get(data.get("blocks") or ""),
        )
    except (SignOffNotAllowed, PermissionDenied, ValueError) as exc:
        return _refused(request, package, exc, form)
    notice = f"Finding {finding.ref} was raised" + (" and blocks approval." if finding.blocks_approval else ".")
    return review_views._action_done(request, package, notice, "finding")


ACTIONS = {"remediate": "moved to remediation", "close": "closed", "accept": "accepted as a risk"}


@login_required
@require_POST
def finding_action(request: HttpRequest, finding_id: int, action: str) -> HttpResponse:
    """remediate | close | accept on one finding (the service checks who may, under the row lock)."""
    finding = find_finding(request.user, finding_id)
    if finding is None or action not in ACTIONS:
        raise Http404("No such finding or action")
    package = finding.package
    form: forms.Form | None = None
    try:
        if action == "remediate":
            finding_remediate(user=request.user, finding_id=finding.pk)
        elif action == "close":
            form = CloseForm(request.POST)
            if not form.is_valid():
                raise FindingNotAllowed(review_views.form_message(form), code="invalid")
            data = form.cleaned_data
            finding_close(
                user=request.user, finding_id=finding.pk, comment=data["comment"], evidence_url=data["evidence_url"]
            )
        else:
            form = AcceptForm(request.POST)
            if not form.is_valid():
                raise FindingNotAllowed(review_views.form_message(form), code="invalid")
            finding_accept_risk(
                user=request.user, finding_id=finding.pk, justification=form.cleaned_data["justification"]
            )
    except (SignOffNotAllowed, PermissionDenied, ValueError) as exc:
        return _refused(request, package, exc)  # the raise form stays as it was
    return review_views._action_done(request, package, f"Finding {finding.ref} was {ACTIONS[action]}.", "finding")
