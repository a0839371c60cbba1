"""CloudTrail adapter: LookupEvents pages under the 2 TPS limit, and the trail's S3 log files.

LookupEvents allows 2 requests per second per account and Region, and AWS will not raise it
(docs: shared/aws-formats.md §2.6). Every HTTP attempt of ``LookupEvents`` — the first one and each
of botocore's own retries — takes a token from one process-wide ``RateLimiter`` per account+Region,
so several sources (or threads) sharing an account never exceed it together. A throttle that
outlives botocore's retries is waited out here and the *same* request (same parameters, same
``NextToken``) is sent again; after ``max_throttle_waits`` the call raises ``RetryableAwsError`` and
the caller keeps its cursor where it is, so nothing is skipped.

Returns plain records (``CloudTrailEvent`` JSON parsed) and bytes; raises only
``registry_app.aws.errors`` exceptions.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from registry_app.audit.events import record_from_lookup_event
from registry_app.aws.cloudtrail_digests import DigestObject, PublicKey, get_digest_object, list_public_keys
from registry_app.aws.errors import THROTTLING_CODES, AwsError, RetryableAwsError, translate
from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import CallStats, SourceConfig

LOOKUP_RATE = 1.9  # requests/second: under AWS's 2 TPS with room for clock skew between us and AWS
LOOKUP_PAGE_SIZE = 50  # the API maximum
LOOKUP_RETENTION = dt.timedelta(days=90)  # LookupEvents only reaches this far back
# A clamped StartTime is the retention horizon plus this margin, rounded up to the hour: far enough
# inside the limit to survive clock skew, and the same for every page of an hour (a NextToken is only
# valid with the parameters it was issued for).
RETENTION_MARGIN = dt.timedelta(minutes=5)
S3_PAGE_SIZE = 1000


class RateLimiter:
    """Token bucket: at most ``rate`` acquisitions per second on average, bursts of ``burst``.

    Thread-safe. Waiters reserve their slot under the lock and sleep outside it, so concurrent
    callers queue up in order instead of waking together. ``clock`` and ``sleep`` are injectable
    for tests (a fake clock whose ``sleep`` advances it).
    """

    def __init__(
        self,
        rate: float = LOOKUP_RATE,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._last = clock()
        self._lock = threading.Lock()
        self.acquired = 0
        self.waited = 0.0

    def acquire(self) -> float:
        """Take one token, sleeping until it is there; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0  # reserve (may go negative: later callers wait behind us)
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
            self.acquired += 1
            self.waited += wait
        if wait > 0:
            self._sleep(wait)
        return wait


_LIMITERS: dict[tuple[str, str], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(account: str, region: str, *, rate: float = LOOKUP_RATE) -> RateLimiter:
    """The process-wide LookupEvents limiter of one account+Region."""
    key = (account, region)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = RateLimiter(rate)
        return limiter


def clear_limiters() -> None:
    with _LIMITERS_LOCK:
        _LIMITERS.clear()


@dataclass(frozen=True)
class LookupPage:
    records: list[dict[str, Any]]
    next_token: str | None
    throttled: int  # throttles waited out for this page (after botocore's own retries)
    # Set when the requested StartTime was older than LookupEvents' 90 days: the StartTime actually
    # sent (events before it are only in the trail's S3 files). A window entirely older than that
    # gives an empty last page without a call.
    start_clamped_to: dt.datetime | None = None


@dataclass(frozen=True)
class LogObject:
    key: str
    size: int


def is_throttle(exc: AwsError) -> bool:
    return exc.retryable and (exc.code in THROTTLING_CODES or exc.code == "429")


class CloudTrailReader(RegistryClient):
    """CloudTrail LookupEvents and trail-bucket S3 calls for one source (clients shared, thread-safe)."""

    def __init__(
        self,
        cfg: SourceConfig,
        stats: CallStats | None = None,
        *,
        limiter: RateLimiter | None = None,
        account: str = "",
        sleep: Callable[[float], Any] = time.sleep,
        max_throttle_waits: int = 8,
        throttle_backoff: float = 1.0,
        throttle_backoff_max: float = 30.0,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        super().__init__(cfg, stats)
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._clamped: dict[Any, dt.datetime] = {}  # requested StartTime -> the StartTime sent instead
        self.limiter = limiter or limiter_for(account or cfg.role_arn or cfg.name, cfg.region)
        self._sleep = sleep
        self.max_throttle_waits = max_throttle_waits
        self.throttle_backoff = throttle_backoff
        self.throttle_backoff_max = throttle_backoff_max
        self._local = threading.local()
        self._hooked: set[int] = set()

    # -- LookupEvents --------------------------------------------------------------------
    def _cloudtrail(self) -> Any:
        client = self.client("cloudtrail")
        if id(client) not in self._hooked:
            # botocore's retries bypass our explicit acquire(): make every HTTP attempt pay a token.
            client.meta.events.register("before-send.cloudtrail.LookupEvents", self._before_send)
            self._hooked.add(id(client))
        return client

    def _before_send(self, **_: Any) -> None:
        if getattr(self._local, "prepaid", False):
            self._local.prepaid = False  # the first attempt was paid for in lookup_page()
        else:
            self.limiter.acquire()

    def lookup_page(self, params: dict[str, Any]) -> LookupPage:
        """One LookupEvents call with exactly ``params``; throttles are waited out, never skipped.

        A window resumed after more than 90 days (``InvalidTimeRangeException``: "the time range is
        outside the range of possible values") is clamped to the retention horizon and sent again,
        instead of failing on every run; the StartTime sent is kept for later pages of this reader
        and reported in ``LookupPage.start_clamped_to``.

        Raises ``RetryableAwsError`` when throttling (or a 5xx/network error) persists past botocore's
        retries and ``max_throttle_waits`` waits of ours: the caller must resend the same page later.
        """
        client = self._cloudtrail()
        requested = params.get("StartTime")
        waits = 0
        clamped_now = False
        while True:
            sent = self._clamp(params)
            if sent is None:  # the whole window is older than LookupEvents reaches
                return LookupPage(
                    records=[], next_token=None, throttled=waits, start_clamped_to=self._clamped[requested]
                )
            self.limiter.acquire()
            self._local.prepaid = True
            started = time.perf_counter()
            try:
                response = client.lookup_events(**sent)
            except Exception as exc:  # noqa: BLE001 - translated into our hierarchy
                error = translate(exc, "LookupEvents")
                if error.code == "InvalidTimeRangeException" and not clamped_now and self._learn_horizon(requested):
                    clamped_now = True
                    continue
                if error.retryable and waits < self.max_throttle_waits:
                    waits += 1
                    if is_throttle(error):
                        self.stats.record_throttle("LookupEvents")
                    self._sleep(min(self.throttle_backoff_max, self.throttle_backoff * 2 ** (waits - 1)))
                    continue
                raise error from exc
            finally:
                self._local.prepaid = False
                self.stats.record("LookupEvents", time.perf_counter() - started)
            records = [record_from_lookup_event(event) for event in response.get("Events") or []]
            return LookupPage(
                records=records,
                next_token=response.get("NextToken") or None,
                throttled=waits,
                start_clamped_to=self._clamped.get(requested),
            )

    def retention_start(self) -> dt.datetime:
        """The earliest StartTime to send now: 90 days back plus a margin, rounded up to the hour."""
        earliest = self._now().astimezone(dt.UTC) - LOOKUP_RETENTION + RETENTION_MARGIN
        hour = earliest.replace(minute=0, second=0, microsecond=0)
        return hour if hour == earliest else hour + dt.timedelta(hours=1)

    def _learn_horizon(self, requested: Any) -> bool:
        """After a range error: clamp ``requested`` from now on, if it is older than the horizon."""
        if not isinstance(requested, dt.datetime):
            return False
        horizon = self.retention_start()
        if requested.astimezone(dt.UTC) >= horizon:
            return False  # not a retention problem (e.g. StartTime after EndTime): let it fail
        self._clamped[requested] = horizon
        return True

    def _clamp(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """``params`` with a learned StartTime, or None when the window ends before it."""
        start = self._clamped.get(params.get("StartTime"))
        if start is None:
            return params
        end = params.get("EndTime")
        if isinstance(end, dt.datetime) and end.astimezone(dt.UTC) <= start:
            return None
        return {**params, "StartTime": start}

    # -- S3 trail files ------------------------------------------------------------------
    def list_prefixes(self, bucket: str, prefix: str) -> list[str]:
        """The "folders" directly under ``prefix`` (Delimiter ``/``)."""
        out: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/", "MaxKeys": S3_PAGE_SIZE}
            if token:
                params["ContinuationToken"] = token
            response = self._call("s3", "ListObjectsV2", **params)
            out += [p["Prefix"] for p in response.get("CommonPrefixes") or [] if p.get("Prefix")]
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated") or not token:
                return out

    def iter_objects(self, bucket: str, prefix: str, *, start_after: str = "") -> Iterator[list[LogObject]]:
        """Pages of objects under ``prefix`` in key order, after ``start_after``."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": S3_PAGE_SIZE}
            if token:
                params["ContinuationToken"] = token
            elif start_after:
                params["StartAfter"] = start_after
            response = self._call("s3", "ListObjectsV2", **params)
            yield [LogObject(o["Key"], int(o.get("Size") or 0)) for o in response.get("Contents") or []]
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated") or not token:
                return

    # -- digest files (log file integrity; see cloudtrail_digests) --------------------------
    def list_public_keys(self, start: dt.datetime, end: dt.datetime) -> list[PublicKey]:
        return list_public_keys(self, start, end)

    def get_digest(self, bucket: str, key: str) -> DigestObject:
        return get_digest_object(self, bucket, key)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        response = self._call("s3", "GetObject", Bucket=bucket, Key=key)
        try:
            return bytes(response["Body"].read())
        except Exception as exc:  # noqa: BLE001 - a connection dropped mid-body
            raise RetryableAwsError(f"GetObject {key}: {exc}", operation="GetObject", code="NetworkError") from exc


def utc_seconds(value: dt.datetime) -> dt.datetime:
    """Whole seconds, UTC: what LookupEvents receives (so a stored window resends identically)."""
    return value.astimezone(dt.UTC).replace(microsecond=0)
