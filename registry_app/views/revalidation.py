"""Revalidation actions on the review page (issue 15): sign off a revalidation, start one early.

Thin: validate the form, call one service (which checks permissions again under the package row
lock), then redirect (or, for htmx, the refreshed review panel); a refusal renders the page or
panel with the message and 400/403.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.revalidation import revalidation_signoff_create, revalidation_start
from registry_app.views.review import (
    SignOffForm,
    _action_done,
    _package_or_404,
    _refusal_message,
    _refusal_status,
    _respond_error,
    form_message,
)

__all__ = ["revalidation_signoff", "revalidation_start_view"]


@login_required
@require_POST
def revalidation_signoff(request: HttpRequest, group_name: str, version: int) -> HttpResponse:
    package = _package_or_404(request, group_name, version)
    form = SignOffForm(request.POST)
    if not form.is_valid():
        return _respond_error(request, package, status=400, revalidation_error=form_message(form))
    role = form.cleaned_data["role"]
    if not role:
        return _respond_error(request, package, status=400, revalidation_error="Choose the role you sign as.")
    try:
        result = revalidation_signoff_create(
            user=request.user,
            package_id=package.pk,
            role=role,
            decision=form.cleaned_data["decision"],
            comment=form.cleaned_data["comment"],
        )
    except (SignOffNotAllowed, PermissionDenied, ValueError) as exc:
        return _respond_error(request, package, status=_refusal_status(exc), revalidation_error=_refusal_message(exc))
    outcome = result.revalidation.outcome
    notice = f"Your revalidation sign-off as {role} was recorded."
    if outcome == "passed":
        notice += " The revalidation passed: LastRevalidated will be written to the registry."
    elif outcome == "failed":
        notice += " The revalidation failed: a compliance officer may revoke the approval."
    return _action_done(request, package, notice, "revalidation")


@login_required
@require_POST
def revalidation_start_view(request: HttpRequest, group_name: str, version: int) -> HttpResponse:
    package = _package_or_404(request, group_name, version)
    try:
        revalidation_start(user=request.user, package_id=package.pk)
    except (SignOffNotAllowed, PermissionDenied, ValueError) as exc:
        return _respond_error(request, package, status=_refusal_status(exc), revalidation_error=_refusal_message(exc))
    return _action_done(
        request, package, "A revalidation was started: the policy's roles may now sign it.", "revalidation"
    )
