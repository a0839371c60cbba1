"""The review page (the package page with its policy checklist, comparison and sign-off panel) and
the review actions: sign off, revoke an approval, archive a group, retry a push.

Each action view validates a small form, calls one service and renders: on success a redirect
(or, for htmx, the refreshed review panel with ``HX-Trigger: signoff-recorded`` and the nav counts
out-of-band); on a refusal the same page or panel with the message and 400/403. The services
check permissions again under the package row lock, so what the page offers is only a hint.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from registry_app.mirror import selectors
from registry_app.mirror.lookups import find_group, find_package
from registry_app.mirror.selectors import PackageDetail
from registry_app.models import ModelPackage, ModelPackageGroup, SignOff
from registry_app.permissions import can_archive
from registry_app.review import queue as selectors_queue
from registry_app.review.compare import baseline_curves
from registry_app.review.decisions import MAX_JUSTIFICATION, package_revoke, policy_exception_record
from registry_app.review.decisions import group_archive as group_archive_service
from registry_app.review.panel import review_state
from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.push import push_retry as push_retry_service
from registry_app.review.revalidation_card import revalidation_card
from registry_app.review.signoffs import MAX_COMMENT, signoff_create, signoff_withdraw
from registry_app.views.finding_forms import conditions_from_post
from registry_app.views.groups import wants_partial
from registry_app.views.params import source_name

PAGE_TEMPLATE = "registry_app/package_detail.html"
PANEL_TEMPLATE = PAGE_TEMPLATE + "#review_panel"
BANNER_TEMPLATE = PAGE_TEMPLATE + "#status_banner"
ARCHIVE_TEMPLATE = "registry_app/group_archive.html"
NAV_TEMPLATE = "registry_app/partials/review_nav_queue.html"
SIGNOFF_EVENT = "signoff-recorded"

# SignOffNotAllowed codes that mean "you may not" (403); the others mean "not in this state" (400).
FORBIDDEN_CODES = frozenset({"role_not_held", "registrant", "separation_of_duties", "not_allowed", "forbidden"})


# --------------------------------------------------------------------------------------------- forms


class SignOffForm(forms.Form):
    decision = forms.ChoiceField(
        choices=SignOff.Decision.choices, error_messages={"required": "Choose Approve or Reject."}
    )
    role = forms.CharField(required=False, max_length=64)
    comment = forms.CharField(required=False, max_length=MAX_COMMENT, strip=True, label="Comment")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == SignOff.Decision.REJECT and not data.get("comment"):
            self.add_error(
                "comment", "A rejection needs a comment: say what is wrong and what must change before approval."
            )
        return data


class JustificationForm(forms.Form):
    justification = forms.CharField(
        max_length=MAX_JUSTIFICATION,
        strip=True,
        error_messages={"required": "A justification is required: it is recorded and sent to the registry."},
    )


def form_message(form: forms.Form) -> str:
    """The form's errors as one sentence list (the panel shows a single message)."""
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


# --------------------------------------------------------------------------------------------- rendering


def _source(request: HttpRequest) -> str | None:
    return source_name(request)


def _package_or_404(request: HttpRequest, group_name: str, version: int) -> ModelPackage:
    package = find_package(request.user, group_name=group_name, version=version, source_name=_source(request))
    if package is None:
        raise Http404("No such model package version")
    return package


def _package_url(package: ModelPackage) -> str:
    url = reverse("registry:package_detail", args=[package.group.name, package.version])
    return f"{url}?{urlencode({'source': package.group.source.name})}#review"


def _panel_context(request: HttpRequest, package: ModelPackage, **extra: Any) -> dict[str, Any]:
    review = review_state(package, request.user)
    return {
        "package": package,
        "review": review,
        "can_archive_group": can_archive(request.user, package.group),
        "revalidation": revalidation_card(package, request.user, policy=review.policy),
        **extra,
    }


def _render_page(request: HttpRequest, package: ModelPackage, *, status: int = 200, **extra: Any) -> HttpResponse:
    detail = selectors.package_detail(
        request.user, group_name=package.group.name, version=package.version, source_name=package.group.source.name
    )
    if detail is None:  # pragma: no cover - the package was just read
        raise Http404("No such model package version")
    return _render_detail(request, detail, status=status, **extra)


def _render_detail(request: HttpRequest, detail: PackageDetail, *, status: int = 200, **extra: Any) -> HttpResponse:
    context = {"detail": detail, **_panel_context(request, detail.package, **extra)}
    # The approved version's curves, overlaid on this version's charts (evidence_tags.report_charts).
    context["baseline_evidence"] = baseline_curves(context["review"].baseline_package)
    return render(request, PAGE_TEMPLATE, context, status=status)


def _render_panel(request: HttpRequest, package: ModelPackage, *, status: int = 200, **extra: Any) -> HttpResponse:
    context = _panel_context(request, package, **extra)
    response = render(request, PANEL_TEMPLATE, context, status=status)
    # The banner at the top of the page says the same as the panel: swapped in by its id.
    response.write(render_to_string(BANNER_TEMPLATE, {**context, "oob": True}, request=request))
    if status == 200:
        selectors_queue.queue_cache_clear(request.user)
        # The top bar's per-role counts changed too: htmx swaps this fragment in by its id.
        response.write(render_to_string(NAV_TEMPLATE, {"oob": True}, request=request))
    return response


def _respond_error(request: HttpRequest, package: ModelPackage, *, status: int, **extra: Any) -> HttpResponse:
    """The refusal: the panel alone for htmx (review.js swaps 400/403 into [data-swap-errors]), else the page."""
    if request.htmx:
        return _render_panel(request, package, status=status, **extra)
    return _render_page(request, package, status=status, **extra)


def _refusal_status(exc: Exception) -> int:
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, SignOffNotAllowed) and exc.code in FORBIDDEN_CODES:
        return 403
    return 400


def _refusal_message(exc: Exception) -> str:
    if isinstance(exc, SignOffNotAllowed):
        return exc.message
    text = str(exc).strip().strip("'\"")
    if isinstance(exc, PermissionDenied):
        return text or "You are not allowed to do this."
    return text or "This request cannot be carried out."


# --------------------------------------------------------------------------------------------- the page


@require_GET
@login_required
def package_review(request: HttpRequest, group_name: str, version: int) -> HttpResponse:
    """The package page with its review sections (served at the package page's URL).

    htmx requests that are not navigations get the review panel alone (for a refresh).
    """
    if wants_partial(request) and request.GET.get("part") == "status":
        return _status_poll(request, _package_or_404(request, group_name, version))
    if wants_partial(request):
        package = _package_or_404(request, group_name, version)
        response = render(request, PANEL_TEMPLATE, _panel_context(request, package))
    else:
        detail = selectors.package_detail(
            request.user, group_name=group_name, version=version, source_name=_source(request)
        )
        if detail is None:
            raise Http404("No such model package version")
        response = _render_detail(request, detail)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _status_poll(request: HttpRequest, package: ModelPackage) -> HttpResponse:
    """The banner polling itself every 2 s while a push is in flight. Once settled: the banner and,
    out of band, the review panel in their final state, with 286 (htmx stops polling)."""
    context = _panel_context(request, package)
    response = render(request, BANNER_TEMPLATE, context)
    patch_vary_headers(response, ("HX-Request",))
    if context["review"].status.polling:
        return response
    response.write(render_to_string(PANEL_TEMPLATE, {**context, "oob": True}, request=request))
    stop = HttpResponseStopPolling(response.content)
    patch_vary_headers(stop, ("HX-Request",))
    return stop


# --------------------------------------------------------------------------------------------- actions


@login_required
@require_POST
def signoff(request: HttpRequest, group_name: str, version: int) -> HttpResponse:
    package = _package_or_404(request, group_name, version)
    form = SignOffForm(request.POST)
    if not form.is_valid():
        return _respond_error(request, package, status=400, signoff_error=form_message(form), signoff_form=form)
    role = form.cleaned_data["role"]
    if not role:
        # One signable role is implied; with several the user must pick; with none, say why not.
        state = review_state(package, request.user)
        if len(state.signable_roles) != 1:
            if state.signable_roles:
                message, status = "Choose the role you sign as.", 400
            else:
                message, status = state.cannot_sign_reason or "You cannot sign off this package.", 403
            return _respond_error(request, package, status=status, signoff_error=message, signoff_form=form)
        role = state.signable_roles[0]
    decision = form.cleaned_data["decision"]
    conditions, refs, error = conditions_from_post(request.POST)
    if error:
        return _respond_error(request, package, status=400, signoff_error=error, signoff_form=form)
    try:
        result = signoff_create(
            user=request.user,
            package_id=package.pk,
            role=role,
            decision=decision,
            comment=form.cleaned_data["comment"],
            conditions=conditions,
            condition_refs=refs,
        )
    except (SignOffNotAllowed, PermissionDenied, ValueError) as exc:
        return _respond_error(
            request, package, status=_refusal_status(exc), signoff_error=_refusal_message(exc), signoff_form=form
        )
    notice = _signoff_notice(decision, role, result)
    if not request.htmx:
        messages.success(request, notice)
        return redirect(_package_url(package))
    package.refresh_from_db()
    response = _render_panel(request, package, review_notice=notice)
    return trigger_client_event(response, SIGNOFF_EVENT, {"package": package.pk, "decision": decision})


def _signoff_notice(decision: str, role: str, result: Any) -> str:
    verb = "approval" if decision == SignOff.Decision.APPROVE else "rejection"
    text = f"Your {verb} as {role} was recorded."
    outcome = getattr(getattr(result, "decision", None), "status", "")
    if outcome:
        text += f" The policy is decided: the registry will be set to {outcome}."
    return text


@login_required
@require_POST
def revoke(request: HttpRequest, group_name: str, version: int) -> HttpResponse:
    package = _package_or_404(request, group_name, version)
    form = JustificationForm(request.POST)
    if not form.is_valid():
        return _respond_error(request, package, status=400, revoke_error=form_message(form), revoke_form=form)
    try:
        package_revoke(user=request.user, package_id=package.pk, justification=form.cleaned_data["justification"])
    except (SignOffNotAllowed, PermissionDenied, ValueError) as exc:
        return _respond_error(
            request, package, status=_refusal_status(exc), revoke_error=_refusal_message(exc), revoke_form=form
        )
    notice = "The approval was revoked: the registry will be set to Rejected."
    if not request.htmx:
        messages.success(request, notice)
        return redirect(_package_url(package))
    package.refresh_from_db()
    response = _render_panel(request, package, review_notice=notice)
    return trigger_client_event(response, SIGNOFF_EVENT, {"package": package.pk, "decision": "revoke"})


@login_required
@require_POST
def policy_exception(request: HttpRequest, group_name: str, version: int) -> HttpResponse:
    """Compliance: a justified exception to the gates blocking this version (the service checks the role)."""
    package = _package_or_404(request, group_name, version)
    form = JustificationForm(request.POST)
    if not form.is_valid():
        return _respond_error(request, package, status=400, exception_error=form_message(form), exception_form=form)
    try:
        policy_exception_record(
            user=request.user, package_id=package.pk, justification=form.cleaned_data["justification"]
        )
    except (SignOffNotAllowed, PermissionDenied, ValueError) as exc:
        return _respond_error(
            request, package, status=_refusal_status(exc), exception_error=_refusal_message(exc), exception_form=form
        )
    notice = "The policy exception was recorded: approvals count again, and the approval will say why."
    return _action_done(request, package, notice, "exception")


@login_required
@require_POST
def withdraw(request: HttpRequest, group_name: str, version: int, signoff_id: int) -> HttpResponse:
    """Withdraw my own sign-off before the decision (the service checks owner and state under the lock)."""
    package = _package_or_404(request, group_name, version)
    try:
        signoff = signoff_withdraw(user=request.user, package_id=package.pk, signoff_id=signoff_id)
    except (SignOffNotAllowed, PermissionDenied, ValueError) as exc:
        return _respond_error(request, package, status=_refusal_status(exc), signoff_error=_refusal_message(exc))
    notice = f"Your {signoff.get_decision_display().lower()} as {signoff.role} was withdrawn."
    return _action_done(request, package, notice, "withdraw")


def _action_done(request: HttpRequest, package: ModelPackage, notice: str, action: str) -> HttpResponse:
    if not request.htmx:
        messages.success(request, notice)
        return redirect(_package_url(package))
    package.refresh_from_db()
    response = _render_panel(request, package, review_notice=notice)
    return trigger_client_event(response, SIGNOFF_EVENT, {"package": package.pk, "decision": action})


@login_required
@require_POST
def push_retry(request: HttpRequest, push_id: UUID) -> HttpResponse:
    push = selectors_queue.push_with_package(push_id)
    if push is None:
        raise Http404("No such push")
    package = push.package
    try:
        push_retry_service(user=request.user, push_id=push.pk)
    except (SignOffNotAllowed, PermissionDenied, ValueError) as exc:
        return _respond_error(request, package, status=_refusal_status(exc), push_error=_refusal_message(exc))
    notice = "The push was queued again."
    if not request.htmx:
        messages.success(request, notice)
        return redirect(_package_url(package))
    return _render_panel(request, package, review_notice=notice)


# --------------------------------------------------------------------------------------------- archive


def _group_or_404(request: HttpRequest, group_name: str) -> ModelPackageGroup:
    group = find_group(request.user, name=group_name, source_name=_source(request))
    if group is None:
        raise Http404("No such model package group")
    return group


def _render_archive(
    request: HttpRequest, group: ModelPackageGroup, form: JustificationForm, *, error: str = "", status: int = 200
) -> HttpResponse:
    context = {
        "group": group,
        "form": form,
        "error": error,
        "allowed": can_archive(request.user, group),
        "to_reject": selectors_queue.archive_preview(group),
    }
    return render(request, ARCHIVE_TEMPLATE, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def group_archive(request: HttpRequest, group_name: str) -> HttpResponse:
    """GET: the confirmation step listing what will be rejected. POST: archive, with a justification."""
    group = _group_or_404(request, group_name)
    if request.method == "GET":
        if not can_archive(request.user, group):
            message = "Only a compliance officer can archive a group, and only one still in the registry."
            return _render_archive(request, group, JustificationForm(), error=message, status=403)
        return _render_archive(request, group, JustificationForm())
    form = JustificationForm(request.POST)
    if not form.is_valid():
        return _render_archive(request, group, form, error=form_message(form), status=400)
    try:
        decisions = group_archive_service(
            user=request.user, group_id=group.pk, justification=form.cleaned_data["justification"]
        )
    except (SignOffNotAllowed, PermissionDenied, ValueError) as exc:
        return _render_archive(request, group, form, error=_refusal_message(exc), status=_refusal_status(exc))
    count = len(decisions)
    versions = f"{count} version{'s' if count != 1 else ''}"
    messages.success(request, f"{group.name} was archived: {versions} will be set to Rejected in the registry.")
    url = reverse("registry:group_detail", args=[group.name])
    return redirect(f"{url}?{urlencode({'source': group.source.name})}")
