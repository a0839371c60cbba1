from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

log = logging.getLogger(__name__)

_REQUEST_ATTR = "_queue_nav"


class QueueNav:
    """The per-role counts of the "Queue" link, computed at most once per request and only if shown.

    Cost: ``selectors_queue.queue_counts`` (a fixed number of queries; none for anonymous users).
    """

    def __init__(self, user: Any) -> None:
        self._user = user

    @cached_property
    def counts(self) -> list[tuple[str, int]]:
        """Cached across requests for ``QUEUE_NAV_CACHE_SECONDS`` (the /queue/ page itself is always
        exact); a sign-off clears the signer's entry through ``queue_cache_clear``."""
        from registry_app.review.queue import nav_cache_key, queue_counts

        user = self._user
        ttl = settings.QUEUE_NAV_CACHE_SECONDS
        if user is None or not getattr(user, "is_authenticated", False) or ttl <= 0:
            return list(queue_counts(user).items()) if user is not None else []
        key = nav_cache_key(user)
        try:
            cached = cache.get(key)
        except Exception as exc:  # noqa: BLE001 - the cache (Redis) is down: compute, never fail the page
            log.warning("queue nav cache unavailable (%s): counting without it", type(exc).__name__)
            return list(queue_counts(user).items())
        if cached is None:
            cached = list(queue_counts(user).items())
            try:
                cache.set(key, cached, ttl)
            except Exception as exc:  # noqa: BLE001 - as above
                log.warning("queue nav cache unavailable (%s): not stored", type(exc).__name__)
        return [tuple(pair) for pair in cached]  # type: ignore[misc]

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
