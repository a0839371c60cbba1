"""The user's profile: how each notification kind is sent (immediately, daily digest, never) and the groups
they watch (watch/unwatch)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from registry_app.mirror.lookups import find_group
from registry_app.models import NotificationKind, NotificationPreference
from registry_app.models.signoffs import EMAIL_KINDS
from registry_app.notifications import profile as notifications
from registry_app.notifications.selectors import profile_overview, watchable_groups


class NotificationPreferencesForm(forms.Form):
    """One choice per e-mailed kind (``mode_<kind>``): immediately, in the daily digest, or never.
    A kind left out of the POST keeps its current choice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = dict(NotificationKind.choices)
        for kind in EMAIL_KINDS:
            self.fields[f"mode_{kind}"] = forms.ChoiceField(
                choices=NotificationPreference.Mode.choices,
                required=False,
                widget=forms.RadioSelect,
                label=labels[kind],
            )

    def modes(self, current: dict[str, str]) -> dict[str, str]:
        return {kind: self.cleaned_data.get(f"mode_{kind}") or current[kind] for kind in EMAIL_KINDS}


class WatchForm(forms.Form):
    action = forms.ChoiceField(choices=[("watch", "Watch"), ("unwatch", "Unwatch")])
    source = forms.CharField(required=False, max_length=64)
    next = forms.CharField(required=False, max_length=2000)


@require_http_methods(["GET", "POST"])
@login_required
def profile(request: HttpRequest) -> HttpResponse:
    overview = profile_overview(request.user)  # type: ignore[arg-type]
    form = NotificationPreferencesForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        modes = form.modes({choice.value: choice.mode for choice in overview.kinds})
        notifications.notification_preferences_set(
            request.user,  # type: ignore[arg-type]
            opted_out=[kind for kind, mode in modes.items() if mode == NotificationPreference.Mode.OFF],
            daily=[kind for kind, mode in modes.items() if mode == NotificationPreference.Mode.DAILY],
        )
        messages.success(request, "Your notification preferences were saved.")
        return redirect("registry:profile")
    return render(
        request,
        "registry_app/profile.html",
        {
            "form": form,
            "overview": overview,
            "watchable": watchable_groups(request.user),
            "digest_hour": f"{settings.NOTIFY_DIGEST_HOUR_UTC % 24:02d}",
        },
    )


def _safe_next(request: HttpRequest, candidate: str, fallback: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback


@require_POST
@login_required
def group_watch(request: HttpRequest, group_name: str) -> HttpResponse:
    """POST action=watch|unwatch (optional source=, next=) for the group called ``group_name``."""
    form = WatchForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Invalid watch request", status=400)
    group = find_group(request.user, name=group_name, source_name=form.cleaned_data["source"] or None)
    if group is None:
        raise Http404("No such model package group")
    watch = form.cleaned_data["action"] == "watch"
    notifications.watch_group(request.user, group, watch=watch)  # type: ignore[arg-type]
    messages.success(request, f"{'Watching' if watch else 'No longer watching'} {group.name}.")
    return HttpResponseRedirect(_safe_next(request, form.cleaned_data["next"], reverse("registry:profile")))
