"""A fixed-window rate limit per token (or per signed-in person), counted in the Django cache.

Redis in production, so every web process counts the same window; locmem in tests. A window is a
cache key ``api-rate:<caller>:<window start>`` created with ``add`` and counted with ``incr`` (both
atomic in Redis). Over the limit: 429 with ``Retry-After`` (seconds to the next window). If the
cache itself fails the call is let through: a pipeline's deploy must not stop because Redis
blinked, and the limit is a guard against runaway loops, not an access control.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

from registry_app.api.auth import Caller

__all__ = ["DEFAULT_PER_MINUTE", "PerCallerThrottle"]

log = logging.getLogger(__name__)

DEFAULT_PER_MINUTE = 120
WINDOW_SECONDS = 60
KEY_PREFIX = "api-rate"  # tests give each test its own (the cache may be a Redis shared by parallel runs)


def _limit() -> int:
    return int(getattr(settings, "API_RATE_LIMIT_PER_MINUTE", DEFAULT_PER_MINUTE))


class PerCallerThrottle(BaseThrottle):
    """Stateless between requests (ninja shares one instance across threads)."""

    def allow_request(self, request: HttpRequest) -> bool:
        caller = getattr(request, "auth", None)
        limit = _limit()
        if not isinstance(caller, Caller) or limit <= 0:
            return True
        start = int(time.time()) // WINDOW_SECONDS * WINDOW_SECONDS
        key = f"{KEY_PREFIX}:{caller.rate_key}:{start}"
        try:
            cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
            try:
                count = cache.incr(key)
            except ValueError:  # the key expired between add and incr
                cache.set(key, 1, timeout=WINDOW_SECONDS + 5)
                count = 1
        except Exception:  # noqa: BLE001 - see the module docstring: fail open, loudly
            log.exception("API rate limit: the cache failed; letting the call through")
            return True
        return int(count) <= limit

    def wait(self) -> float:
        return WINDOW_SECONDS - (time.time() % WINDOW_SECONDS)
