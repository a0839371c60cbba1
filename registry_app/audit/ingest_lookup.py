"""The LookupEvents pass of the CloudTrail ingest (90 days of history, no setup).

``EventSource=sagemaker.amazonaws.com``, 50 per page, names filtered here: the window ``[previous end
- overlap, now]`` (the first run: the last 90 days) is walked page by page; after each page its
events *and* the cursor (window start/end + ``NextToken``) commit in one transaction, so a crash
resumes with the same token and the exact same parameters. Throttles are waited out by the adapter;
a page that still fails is simply not advanced past.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone

from registry_app.audit.event_keys import ASSUME_ROLE, SAGEMAKER
from registry_app.audit.events import prepare_records
from registry_app.audit.ingest_run import IngestRun, PassResult, cursor_row, cursor_time, parse_cursor_time
from registry_app.aws.cloudtrail import LOOKUP_PAGE_SIZE, utc_seconds
from registry_app.aws.errors import AwsError, RetryableAwsError
from registry_app.models import AuditCursor, CloudTrailEvent

__all__ = ["LOOKUP_RETENTION", "LookupPass", "lookup_overlap"]

LOOKUP_RETENTION = dt.timedelta(days=90)


def lookup_overlap() -> dt.timedelta:
    # LookupEvents shows an event some minutes after it happened: re-read this much of the last window.
    return dt.timedelta(seconds=int(getattr(settings, "AUDIT_LOOKUP_OVERLAP_SECONDS", 900)))


class LookupPass(IngestRun):
    """LookupEvents, one window per look-up attribute (SageMaker's event source; AssumeRole if enabled)."""

    def lookup_passes(self) -> list[tuple[str, str, str]]:
        passes = [("sagemaker", "EventSource", SAGEMAKER)]
        if getattr(settings, "AUDIT_LOOKUP_ASSUME_ROLE", False):
            passes.append(("assume_role", "EventName", ASSUME_ROLE))
        return passes

    def run_lookup(self, result: PassResult, *, respect_backoff: bool = False) -> None:
        cursor = cursor_row(self.source, AuditCursor.Kind.LOOKUP)
        position: dict[str, Any] = dict(cursor.position or {})
        passes: dict[str, Any] = dict(position.get("passes") or {})
        retry_after = position.get("retry_after")
        if respect_backoff and retry_after and parse_cursor_time(retry_after) > self.clock():
            result.note = f"LookupEvents failed before; next try after {retry_after}"
            return
        result.ran = True
        complete = True
        for name, key, value in self.lookup_passes():
            state = dict(passes.get(name) or {})
            ok = self._lookup_window(name, key, value, state, passes, position, result)
            complete = complete and ok
            if not ok:
                break
        result.complete = complete

    def _save_lookup(self, passes: dict[str, Any], position: dict[str, Any]) -> dict[str, Any]:
        position = {**position, "passes": passes}
        return position

    def _lookup_window(
        self,
        name: str,
        key: str,
        value: str,
        state: dict[str, Any],
        passes: dict[str, Any],
        position: dict[str, Any],
        result: PassResult,
    ) -> bool:
        now = utc_seconds(self.clock())
        horizon = now - LOOKUP_RETENTION
        window = state.get("window")
        if self.since is not None or not window:
            if self.since is not None:
                start = dt.datetime.combine(self.since, dt.time.min, tzinfo=dt.UTC)
            elif state.get("done_until"):
                done = parse_cursor_time(state["done_until"])
                if done < horizon:
                    result.error(
                        f"LookupEvents: the previous run ended at {state['done_until']}, more than 90 days ago: "
                        "events between then and the 90-day horizon are only in the trail's S3 files"
                    )
                start = done - lookup_overlap()
            else:
                start = horizon
            start = max(utc_seconds(start), horizon)
            if not state.get("covered_from") or cursor_time(start) < state["covered_from"]:
                state["covered_from"] = cursor_time(start)  # the oldest time LookupEvents was read from
            if start >= now:
                return True
            window = {"start": cursor_time(start), "end": cursor_time(now), "token": None, "key": key, "value": value}
        base = {
            "LookupAttributes": [{"AttributeKey": window["key"], "AttributeValue": window["value"]}],
            "StartTime": parse_cursor_time(window["start"]),
            "EndTime": parse_cursor_time(window["end"]),
            "MaxResults": LOOKUP_PAGE_SIZE,
        }
        token: str | None = window.get("token")
        restarted = False
        while True:
            if self.out_of_time():
                result.note = "time budget used up; resumes from the stored NextToken"
                return False
            params = dict(base)
            if token:
                params["NextToken"] = token
            try:
                page = self.reader.lookup_page(params)
            except RetryableAwsError as exc:
                result.throttled += 1
                result.error(f"LookupEvents: {exc} (page kept; the next run resends it)")
                return False
            except AwsError as exc:
                if token and exc.code == "InvalidNextTokenException" and not restarted:
                    # Tokens expire: walk the same window again from its newest page (dedupe absorbs it).
                    restarted, token = True, None
                    continue
                result.error(f"LookupEvents: {exc}")
                failures = int(position.get("failures") or 0) + 1
                position["failures"] = failures
                backoff = min(6 * 3600, 300 * 2 ** min(failures - 1, 7))
                position["retry_after"] = cursor_time(self.clock() + dt.timedelta(seconds=backoff))
                position["last_error"] = str(exc)[:500]
                AuditCursor.objects.filter(source=self.source, kind=AuditCursor.Kind.LOOKUP).update(
                    position=self._save_lookup(passes, position), updated_at=timezone.now()
                )
                return False
            result.pages += 1
            result.records += len(page.records)
            result.throttled += page.throttled
            if page.start_clamped_to is not None and cursor_time(page.start_clamped_to) != window["start"]:
                # The window began before LookupEvents' 90 days: the reader sent a later StartTime. Keep
                # that one, so the next run resends exactly what this page's NextToken belongs to instead
                # of spending a refused call first.
                clamped = cursor_time(page.start_clamped_to)
                result.error(
                    f"LookupEvents reaches back only to {clamped}: events of this window from {window['start']} "
                    "until then are only in the trail's S3 files"
                )
                window = {**window, "start": clamped}
                base["StartTime"] = parse_cursor_time(clamped)
            token = page.next_token
            if token:
                state = {**state, "window": {**window, "token": token}}
            else:
                state = {"done_until": window["end"], "window": None, "covered_from": state.get("covered_from")}
            passes[name] = state
            position.pop("failures", None)
            position.pop("retry_after", None)
            position.pop("last_error", None)
            _, prepared = prepare_records(page.records, fallback_time=self.clock())
            self._commit(
                AuditCursor.Kind.LOOKUP,
                prepared,
                CloudTrailEvent.Via.LOOKUP,
                self._save_lookup(passes, position),
                result,
            )
            if not token:
                return True
