"""Response guards: nothing a logged-in person sees is kept by a browser or proxy cache.

``PrivatePagesMiddleware`` (after ``AuthenticationMiddleware``) gives every response to a logged-in
request ``Cache-Control: max-age=0, no-cache, no-store, must-revalidate, private`` unless the view
already said ``no-store``. Review pages, audit timelines and exports carry registry and audit data:
a shared proxy must never serve them to someone else, and the browser must not leave them on disk
for the next user of the machine (the back button re-fetches instead). The user is read only when
the request carries a session cookie, so probes and scrapes still load no session.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers


def logged_in(request: HttpRequest) -> bool:
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


class PrivatePagesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "no-store" not in response.get("Cache-Control", "") and logged_in(request):
            add_never_cache_headers(response)
        return response
