"""Sync status per source, "Sync now" (staff only) and the progress poll; the notification outbox's state
(failed notifications, "Send again" for staff); past runs (``/sync/runs/``) and each run's page."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from registry_app.audit.coverage import evidence_status
from registry_app.mirror import runs as sync_runs
from registry_app.mirror.run_history import WITH_ERRORS, RunFilters, run_list, source_names
from registry_app.mirror.sync_status import source_by_name, sync_overview, sync_run_for_status
from registry_app.models import SyncRun
from registry_app.notifications.outbox import outbox_retry_failed
from registry_app.notifications.selectors import outbox_overview
from registry_app.views.forms import SyncRequestForm
from registry_app.views.params import SOURCE_FORM, cleaned

PROGRESS_PARTIAL = "registry_app/sync_status.html#run_progress"
RUN_STATUS_CHOICES = [("", "Any status"), (WITH_ERRORS, "With errors"), *SyncRun.Status.choices]


class RunListForm(forms.Form):
    source = forms.RegexField(
        regex=r"\A[-a-zA-Z0-9_]{1,64}\Z",
        required=False,
        max_length=64,
        error_messages={"invalid": f"Use {SOURCE_FORM}."},
    )
    status = forms.ChoiceField(choices=RUN_STATUS_CHOICES, required=False)
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


def can_request_sync(user: object) -> bool:
    # Syncs cost AWS API quota (CloudTrail allows 2 calls/s per account), so only staff may start one.
    return bool(getattr(user, "is_staff", False))


@require_GET
@login_required
def sync_status(request: HttpRequest) -> HttpResponse:
    overview = sync_overview()
    can_sync = can_request_sync(request.user)
    return render(
        request,
        "registry_app/sync_status.html",
        {
            "overview": overview,
            "can_sync": can_sync,
            "evidence": evidence_status(),
            "outbox": outbox_overview(with_failed=can_sync),
        },
    )


@login_required
@require_POST
def notifications_retry(request: HttpRequest) -> HttpResponse:
    """Staff: send every failed notification again (they go back to pending, due now)."""
    if not can_request_sync(request.user):
        raise PermissionDenied("Only staff can retry notifications")
    count = outbox_retry_failed(user=request.user)
    messages.success(request, f"{count} failed notification{'s' if count != 1 else ''} will be sent again.")
    return redirect("registry:sync_status")


@login_required
@require_POST
def sync_run(request: HttpRequest, source_name: str) -> HttpResponse:
    if not can_request_sync(request.user):
        raise PermissionDenied("Only staff can start a sync")
    form = SyncRequestForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("mode must be incremental or full")
    source = source_by_name(source_name)
    if source is None:
        raise Http404("No such registry source")
    if not source.enabled:
        refusal = f"{source.name} is disabled; enable it in the admin before syncing it."
        if request.htmx:
            return render(request, PROGRESS_PARTIAL, {"run": None, "refusal": refusal})
        messages.error(request, refusal)
        return redirect("registry:sync_status")
    run = sync_runs.request_sync(source, mode=form.cleaned_data["mode"], trigger=SyncRun.Trigger.MANUAL)
    if request.htmx:
        return render(request, PROGRESS_PARTIAL, {"run": run})
    messages.success(request, f"{run.get_mode_display()} of {source.name} queued (run #{run.pk}).")
    return redirect("registry:sync_status")


@require_GET
@login_required
def sync_run_status(request: HttpRequest, run_id: int) -> HttpResponse:
    """The htmx progress poll (a partial, 286 once the run ended); any other request gets the run's page."""
    run = sync_run_for_status(run_id)
    if run is None:
        raise Http404("No such sync run")
    if not request.htmx or request.htmx.boosted:
        response = render(request, "registry_app/sync_run.html", {"run": run})
        patch_vary_headers(response, ("HX-Request",))
        return response
    response = render(request, PROGRESS_PARTIAL, {"run": run})
    patch_vary_headers(response, ("HX-Request",))
    if run.is_active:
        return response
    # 286 tells htmx to stop the "every 2s" poll; the final counts in the body are still swapped in.
    stop = HttpResponseStopPolling(response.content)
    patch_vary_headers(stop, ("HX-Request",))
    return stop


@require_GET
@login_required
def sync_run_list(request: HttpRequest) -> HttpResponse:
    """Past runs, newest first, filtered by source and status, paged by ``?before=<run id>``."""
    data = cleaned(RunListForm(request.GET), title="Sync runs")
    filters = RunFilters(source=data["source"] or "", status=data["status"] or "", before=data["before"])
    context = {"page": run_list(filters), "sources": source_names(), "status_choices": RUN_STATUS_CHOICES}
    return render(request, "registry_app/sync_runs.html", context)
