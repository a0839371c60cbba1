"""Password reset for local accounts, rate-limited per client address and per e-mail address.

Each POST counts against its client address (``registry_app.ops.client_ip``):
``PASSWORD_RESET_ADDRESS_LIMIT`` per ``PASSWORD_RESET_WINDOW_MINUTES``, then HTTP 429. Each valid form
counts against the e-mail address it names: past ``PASSWORD_RESET_ACCOUNT_LIMIT`` no e-mail is sent,
and the page answers exactly as when one is (the "done" page), so the limit floods nobody's inbox
and tells nobody whether an account exists. The counts live in the cache (Redis in production, so
every process shares them); if the cache is unreachable the reset goes ahead, logged, rather than
refusing everyone. With ``LOCAL_LOGIN_ENABLED=false`` there are no passwords to reset: 404.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from registry_app.ops.client_ip import client_ip

log = logging.getLogger(__name__)

THROTTLED_TEMPLATE = "registration/password_reset_throttled.html"


def _take(key: str, limit: int) -> bool:
    """Count one use of ``key`` in the current window; False once it is over ``limit``."""
    window = settings.PASSWORD_RESET_WINDOW_MINUTES * 60
    try:
        cache.add(key, 0, window)  # starts the window; a no-op while it runs
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window)
        used = 1
    except Exception as exc:  # noqa: BLE001 - the cache (Redis) is down: do not refuse everyone
        log.warning("password reset: rate-limit cache unavailable (%s); not counted", type(exc).__name__)
        return True
    return used <= limit


def _account_key(email: str) -> str:
    return "pwreset:account:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_LOGIN_ENABLED:
            raise Http404("Local accounts are switched off: there is no password to reset")
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        address = client_ip(request)
        if not _take(f"pwreset:address:{address}", settings.PASSWORD_RESET_ADDRESS_LIMIT):
            log.warning("password reset: too many requests from %s", address)
            context = {"window_minutes": settings.PASSWORD_RESET_WINDOW_MINUTES}
            return render(request, THROTTLED_TEMPLATE, context, status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        if not _take(_account_key(form.cleaned_data["email"]), settings.PASSWORD_RESET_ACCOUNT_LIMIT):
            log.warning("password reset: too many requests for one e-mail address; no e-mail sent")
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)
