from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings
from django.http import HttpRequest

_REQUEST_ATTR = "_queue_nav"


class QueueNav:
    """The per-role counts of the "Queue" link, computed at most once per request and only if shown.

    Cost: ``selectors_queue.queue_counts`` (a fixed number of queries; none for anonymous users).
    """

    def __init__(self, user: Any) -> None:
        self._user = user

    @cached_property
    def counts(self) -> list[tuple[str, int]]:
        from registry_app.selectors_queue import queue_counts

        return list(queue_counts(self._user).items())

    @property
    def total(self) -> int:
        return sum(count for _, count in self.counts)


def queue_nav(request: HttpRequest) -> QueueNav:
    """The request's ``QueueNav`` (cached on the request, so several renders share one computation)."""
    nav = getattr(request, _REQUEST_ATTR, None)
    if nav is None:
        nav = QueueNav(getattr(request, "user", None))
        setattr(request, _REQUEST_ATTR, nav)
    return nav


def navigation(request: HttpRequest) -> dict[str, object]:
    return {"SITE_URL": settings.SITE_URL, "queue_nav": queue_nav(request)}
