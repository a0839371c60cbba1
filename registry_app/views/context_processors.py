from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings
from django.http import HttpRequest


class QueueNav:
    """The per-role counts of the "Queue" link, computed at most once per request and only if shown.

    Cost: ``review.queue.queue_counts``, one ``COUNT ... GROUP BY role`` over the stored review state
    (plus the user's roles, cached per request); none for anonymous users or people without a
    sign-off role. Always exact: nothing is cached between requests.
    """

    def __init__(self, user: Any) -> None:
        self._user = user

    @cached_property
    def counts(self) -> list[tuple[str, int]]:
        from registry_app.review.queue import queue_counts

        return list(queue_counts(self._user).items()) if self._user is not None else []

    @property
    def total(self) -> int:
        return sum(count for _, count in self.counts)


def queue_nav(request: HttpRequest) -> QueueNav:
    """The request's ``QueueNav`` (cached on the request, so several renders share one computation)."""
    nav = getattr(request, "_queue_nav", None)
    if nav is None:
        nav = QueueNav(getattr(request, "user", None))
        request._queue_nav = nav  # type: ignore[attr-defined]
    return nav


def navigation(request: HttpRequest) -> dict[str, object]:
    return {"SITE_URL": settings.SITE_URL, "queue_nav": queue_nav(request)}
