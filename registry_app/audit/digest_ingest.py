"""The digest step of the S3 ingest: read the trail's digest files and settle its log files' verdicts.

For each new digest under ``.../CloudTrail-Digest/<region>/`` (listed from a day folder on, keys
already checked skipped): GET it with its signature metadata (threads), authenticate it
(``digests.authenticate``: location, SHA256withRSA, the Region's key for its time from
``ListPublicKeys``, the signature), check its link to the previous digest (that one's SHA-256 and
signature, from our rows or read from S3: a missing one is a deleted digest), then record it and
the verdicts of the log files it lists (``trail_evidence``), each digest in its own transaction.
Afterwards, files no digest lists although the digests around them were checked are failed.

A digest that cannot be checked now (ListPublicKeys denied or throttled, S3 failing) is stored as
``unchecked`` and checked again by a later run; it never fails evidence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from registry_app.audit.digests import (
    DigestError,
    ParsedDigest,
    authenticate,
    digest_key_time,
    digest_root,
    is_backfill_digest,
    is_digest_key,
)
from registry_app.audit.ingest_run import IngestRun, PassResult
from registry_app.audit.trail_evidence import DigestVerdict, flag_unlisted_files, log_file_failures, record_digests
from registry_app.audit.trail_files import day_start_after, decompress
from registry_app.aws.cloudtrail_digests import DigestObject, PublicKey
from registry_app.aws.errors import AwsError, NotFoundError
from registry_app.models import TrailDigest

__all__ = ["DigestPass", "digest_validation"]

KEY_MARGIN = dt.timedelta(days=2)
RECHECK_UNCHECKED = 200  # unchecked digests retried per run, oldest first
RECORD_BATCH = 500  # digest verdicts stored per transaction
KEY_LOOKBACK = dt.timedelta(days=60)  # keys are listed this much further back (a backfill goes back)


def digest_validation() -> bool:
    return bool(getattr(settings, "AUDIT_DIGEST_VALIDATION", True))


@dataclass
class _Known:
    sha256: str
    signature: str


class DigestPass(IngestRun):
    """Checks digests for a trail folder; shared by the forward S3 pass and the backfill."""

    _keys: list[PublicKey] | None = None
    _keys_span: tuple[dt.datetime, dt.datetime] | None = None
    _budget = True  # whether checking digests stops at the run's time budget

    # -- public keys -------------------------------------------------------------------------
    def public_keys(self, start: dt.datetime, end: dt.datetime) -> list[PublicKey]:
        """The Region's keys for ``[start, end]`` (one ListPublicKeys per run unless it grows)."""
        span = self._keys_span
        if self._keys is None or span is None or start < span[0] or end > span[1]:
            # One listing reaches from well before ``start`` up to now: later digests of a forward pass
            # and older days of a backfill need no second call.
            low = min(start, span[0]) if span else start - KEY_LOOKBACK
            now = self.clock()
            self._keys = self.reader.list_public_keys(low - KEY_MARGIN, now)
            self._keys_span = (low, max(end, now))
        return self._keys

    # -- the pass ----------------------------------------------------------------------------
    def check_digests(
        self,
        log_root: str,
        *,
        from_day: dt.date,
        until_day: dt.date | None,
        result: PassResult,
        budget: bool = True,
    ) -> tuple[int, str]:
        """Check the new digests in the day folders ``[from_day, until_day)`` (no end: up to now).

        Returns (digests listed, newest digest key listed) — the caller keeps the day to list from.
        ``budget=False``: finish the range even past the run's time budget (the backfill, whose next
        slice starts further back and would not list these folders again).
        """
        self._budget = budget
        bucket = self.source.cloudtrail_bucket
        root = digest_root(log_root)
        listed, newest = 0, ""
        known: dict[str, _Known] = {}
        until = f"{root}{until_day:%Y/%m/%d}/" if until_day is not None else None
        for page in self.reader.iter_objects(bucket, root, start_after=day_start_after(root, from_day)):
            keys = [o.key for o in page if is_digest_key(o.key)]
            past_end = until is not None and any(o.key >= until for o in page)
            if until is not None:
                keys = [k for k in keys if k < until]
            listed += len(keys)
            stored = set(
                TrailDigest.objects.filter(bucket=bucket, key__in=keys)
                .exclude(state=TrailDigest.State.UNCHECKED)
                .values_list("key", flat=True)
            )
            checked = self._check_keys([k for k in keys if k not in stored], known, result)
            # Only as far as digests were actually checked: a run stopped by its budget resumes there.
            newest = max([newest, *stored, *checked])
            if past_end or (budget and self.out_of_time()):
                break
        self._budget = True
        return listed, newest

    def recheck_unchecked(self, result: PassResult) -> None:
        """Digests stored as unchecked by an earlier run (keys or S3 unavailable then)."""
        keys = list(
            TrailDigest.objects.filter(source=self.source, state=TrailDigest.State.UNCHECKED)
            .order_by("digest_end", "pk")
            .values_list("key", flat=True)[:RECHECK_UNCHECKED]
        )
        if keys:
            self._check_keys(keys, {}, result)

    def settle_unlisted(self) -> None:
        with transaction.atomic():
            failed = flag_unlisted_files(self.source, now=self.clock())
            log_file_failures((row, None) for row in failed)

    # -- one batch ---------------------------------------------------------------------------
    def _fetched(self, keys: list[str]) -> Iterator[tuple[str, DigestObject | AwsError]]:
        bucket = self.source.cloudtrail_bucket
        with ThreadPoolExecutor(max_workers=max(1, self.prefetch), thread_name_prefix="ct-digest") as pool:
            futures: list[tuple[str, Future[DigestObject]]] = [
                (key, pool.submit(self.reader.get_digest, bucket, key)) for key in keys
            ]
            for key, future in futures:
                try:
                    yield key, future.result()
                except AwsError as exc:
                    yield key, exc

    def _check_keys(self, keys: list[str], known: dict[str, _Known], result: PassResult) -> list[str]:
        """Check these digests (GETs on threads, in key order) and store the verdicts in one go;
        returns the keys checked (all of them unless the time budget ran out)."""
        times = [t for t in (digest_key_time(k) for k in keys) if t is not None]
        verdicts: list[DigestVerdict] = []
        checked: list[str] = []
        for key, fetched in self._fetched(keys):
            if self._budget and self.out_of_time():
                break
            checked.append(key)
            verdict = self._verdict(key, fetched, times, known, result)
            if verdict is not None:
                verdicts.append(verdict)
        for start in range(0, len(verdicts), RECORD_BATCH):
            with transaction.atomic():
                batch = verdicts[start : start + RECORD_BATCH]
                failed = record_digests(self.source, self.source.cloudtrail_bucket, batch, now=self.clock())
                log_file_failures((row, None) for row in failed)
        return checked

    def _verdict(
        self,
        key: str,
        fetched: DigestObject | AwsError,
        times: list[dt.datetime],
        known: dict[str, _Known],
        result: PassResult,
    ) -> DigestVerdict | None:
        unchecked = TrailDigest.State.UNCHECKED
        backfill = is_backfill_digest(key)
        if isinstance(fetched, NotFoundError):
            return None  # deleted since it was listed: its successor's chain check will say so
        if isinstance(fetched, AwsError):
            result.error(f"digest s3://{self.source.cloudtrail_bucket}/{key}: {fetched}")
            return DigestVerdict(key, None, "", unchecked, reason=str(fetched)[:500], backfill=backfill)
        try:
            keys_now = self.public_keys(min(times), max(times)) if times else []
        except AwsError as exc:
            result.error(f"ListPublicKeys: {exc} (digests are checked again next run)")
            return DigestVerdict(
                key, None, fetched.signature, unchecked, reason=f"ListPublicKeys: {exc}", backfill=backfill
            )
        try:
            parsed = authenticate(fetched, keys_now)
        except DigestError as exc:
            failed = TrailDigest.State.FAILED
            return DigestVerdict(
                key, _parsed_or_none(fetched), fetched.signature, failed, reason=str(exc), backfill=backfill
            )
        chain, why = self._chain(parsed, known)
        known[key] = _Known(parsed.sha256, fetched.signature)
        return DigestVerdict(key, parsed, fetched.signature, TrailDigest.State.VALID, chain, why, backfill)

    def _chain(self, parsed: ParsedDigest, known: dict[str, _Known]) -> tuple[str, str]:
        """(chain state, why broken): the previous digest must be there, with the SHA-256 and the
        signature this one records for it."""
        if parsed.is_start:
            return TrailDigest.Chain.START, ""
        previous = known.get(parsed.previous_key)
        if previous is None:
            row = (
                TrailDigest.objects.filter(bucket=parsed.previous_bucket, key=parsed.previous_key)
                .exclude(sha256="")
                .values_list("sha256", "signature")
                .first()
            )
            if row is not None:
                previous = _Known(*row)
        if previous is None:
            try:
                obj = self.reader.get_digest(parsed.previous_bucket, parsed.previous_key)
            except NotFoundError:
                return TrailDigest.Chain.BROKEN, f"the previous digest s3://{parsed.previous_bucket}/" + (
                    f"{parsed.previous_key} is missing (deleted)"
                )
            except AwsError as exc:
                return TrailDigest.Chain.UNKNOWN, f"previous digest not readable now: {exc}"
            try:
                previous = _Known(hashlib.sha256(decompress(obj.body)).hexdigest(), obj.signature)
            except ValueError:
                previous = _Known("", obj.signature)
        if parsed.previous_hash and previous.sha256 != parsed.previous_hash:
            return TrailDigest.Chain.BROKEN, f"the previous digest {parsed.previous_key} was changed (SHA-256 differs)"
        if (parsed.previous_signature or "") != previous.signature:
            return TrailDigest.Chain.BROKEN, f"the previous digest {parsed.previous_key} has another signature"
        return TrailDigest.Chain.LINKED, ""


def _parsed_or_none(obj: DigestObject) -> ParsedDigest | None:
    """What a failed digest claims (its listed files fail with it), when it can be read at all."""
    from registry_app.audit.digests import parse_digest

    try:
        return parse_digest(obj.body)
    except DigestError:
        return None
