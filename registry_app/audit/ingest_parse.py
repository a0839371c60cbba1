"""Parsing trail log files for the S3 ingest: in the calling thread, or in worker processes for a
backlog; and the bigger SQLite page cache a long pass inserts with. Used by ``ingest_s3``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from django.conf import settings
from django.db import connections, router

from registry_app.audit.events import PreparedRow, prepare_log_rows
from registry_app.audit.trail_files import decompress

__all__ = ["Parser", "parse_process_min_files", "parse_processes", "prepare_file", "prepare_rows", "sqlite_cache"]

# The ingest logs under one name, whichever of its modules writes the line.
log = logging.getLogger("registry_app.audit.ingest")


def parse_processes() -> int:
    default = min(2, os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0
    return int(getattr(settings, "AUDIT_PARSE_PROCESSES", default))


def parse_process_min_files() -> int:
    # Worker processes only pay off for a backlog (a backfill): a 5-minute increment parses in-thread.
    return int(getattr(settings, "AUDIT_PARSE_PROCESS_MIN_FILES", 16))


class Parser:
    """Turns log-file bytes into prepared events: in this thread, or in worker processes once started.

    Worker processes (``forkserver``: no thread or connection of ours is inherited) take the JSON
    parsing and normalising off the thread that inserts, which is what lets a backfill run at
    tens of thousands of events a second on two cores. Where processes cannot be started (a daemonic
    Celery pool process, ``AUDIT_PARSE_PROCESSES = 0``), or a worker dies, parsing stays in-thread.
    """

    def __init__(self, *, nice: int = 0) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self._tried = False
        self.nice = nice  # the backfill's parsing processes yield the CPU to syncs, pushes and pages

    def start(self) -> None:
        if self._tried:
            return
        self._tried = True
        processes = parse_processes()
        if processes <= 0 or multiprocessing.current_process().daemon:
            return
        try:
            self.pool = ProcessPoolExecutor(
                max_workers=processes,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=os.nice if self.nice > 0 else None,
                initargs=(self.nice,) if self.nice > 0 else (),
            )
        except (OSError, ValueError, AssertionError):  # pragma: no cover - platform without forkserver
            log.warning("audit ingest: no worker processes for parsing; parsing in threads", exc_info=True)
            self.pool = None

    def parse(self, body: bytes, fallback: dt.datetime, hashed: bool = False) -> tuple[int, list[PreparedRow], str]:
        """(records seen, prepared events, SHA-256 of the uncompressed file when ``hashed``, else "")."""
        pool = self.pool
        if pool is not None:
            try:
                return pool.submit(prepare_file, body, fallback, hashed).result()
            except BrokenProcessPool:
                log.warning("audit ingest: a parsing process died; parsing in threads from now on")
                self.pool = None
        return prepare_file(body, fallback, hashed)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def prepare_file(body: bytes, fallback: dt.datetime, hashed: bool) -> tuple[int, list[PreparedRow], str]:
    """``prepare_rows``, and the SHA-256 of the uncompressed file (what its digest records) when
    ``hashed``: the file is decompressed once for both, in the parsing process."""
    if not hashed:
        return (*prepare_rows(body, fallback), "")
    plain = decompress(body)
    return (*prepare_rows(plain, fallback), hashlib.sha256(plain).hexdigest())


def prepare_rows(body: bytes, fallback: dt.datetime) -> tuple[int, list[PreparedRow]]:
    """``prepare_log_rows`` in a parsing process (events as plain tuples), with the cyclic garbage
    collector paused meanwhile: a file's records are acyclic JSON trees that reference counting
    frees, yet their tens of thousands of containers would set off collection after collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return prepare_log_rows(body, fallback)
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def sqlite_cache(megabytes: int) -> Iterator[None]:
    """A bigger SQLite page cache on this connection while a pass inserts, and WAL checkpoints that
    many megabytes apart: at a million rows the indexes' hot pages no longer fit the default cache,
    and every checkpoint re-copies (and syncs) the pages each commit touched again."""
    # Imported here: parsing processes import this module without Django set up (no models).
    from registry_app.models import CloudTrailEvent

    connection = connections[router.db_for_write(CloudTrailEvent)]
    if connection.vendor != "sqlite" or megabytes <= 0:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        previous = cursor.fetchone()[0]
        cursor.execute("PRAGMA wal_autocheckpoint")
        checkpoint = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = -{int(megabytes) * 1024}")
        cursor.execute(f"PRAGMA wal_autocheckpoint = {int(megabytes) * 256}")  # 4 KiB pages
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")
            cursor.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint)}")
