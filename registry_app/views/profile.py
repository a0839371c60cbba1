"""The user's profile: notification opt-outs per kind and the groups they watch (watch/unwatch)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from registry_app.mirror.lookups import find_group
from registry_app.models import NotificationKind
from registry_app.notifications import profile as notifications
from registry_app.notifications.selectors import profile_overview, watchable_groups


class NotificationPreferencesForm(forms.Form):
    """Checked = receive. Unchecked kinds are stored as opted out."""

    wanted = forms.MultipleChoiceField(
        choices=NotificationKind.choices, widget=forms.CheckboxSelectMultiple, required=False, label="Email me when"
    )

    def opted_out(self) -> list[str]:
        wanted = set(self.cleaned_data.get("wanted") or [])
        return [kind for kind in NotificationKind.values if kind not in wanted]


class WatchForm(forms.Form):
    action = forms.ChoiceField(choices=[("watch", "Watch"), ("unwatch", "Unwatch")])
    source = forms.CharField(required=False, max_length=64)
    next = forms.CharField(required=False, max_length=2000)


@require_http_methods(["GET", "POST"])
@login_required
def profile(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = NotificationPreferencesForm(request.POST)
        if form.is_valid():
            notifications.notification_preferences_set(request.user, opted_out=form.opted_out())  # type: ignore[arg-type]
            messages.success(request, "Your notification preferences were saved.")
            return redirect("registry:profile")
    overview = profile_overview(request.user)  # type: ignore[arg-type]
    if request.method != "POST":
        form = NotificationPreferencesForm(initial={"wanted": [k.value for k in overview.kinds if k.wanted]})
    return render(
        request,
        "registry_app/profile.html",
        {
            "form": form,
            "overview": overview,
            "watchable": watchable_groups(request.user),
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
