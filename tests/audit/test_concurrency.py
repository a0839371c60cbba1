"""Concurrent appends never fork the chain: each waits for the other's transaction to commit.

Runs on whichever database the suite uses; with ``DATABASE_URL=postgres://...`` it exercises the
advisory lock, on SQLite the single write lock.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from registry_app.audit.chain import verify_audit_chain
from registry_app.audit.log import audit_append
from registry_app.models import AuditLogEntry

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 2
APPENDS = 15


def _worker(name: str, barrier: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        barrier.wait(timeout=30)
        for i in range(APPENDS):
            with transaction.atomic():
                audit_append(f"concurrent.{name}", actor=name, via=AuditLogEntry.Via.TASK, message=str(i))
                time.sleep(0.002)  # hold the lock a little: the other thread must wait, not fork
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
    finally:
        connections.close_all()


def test_two_threads_append_one_linear_chain() -> None:
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_worker, args=(f"t{n}", barrier, errors)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    seqs = list(AuditLogEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, THREADS * APPENDS + 1))
    assert AuditLogEntry.objects.values("prev_hash").distinct().count() == THREADS * APPENDS  # no fork
    report = verify_audit_chain()
    assert report.ok, report.problem
    assert report.checked == THREADS * APPENDS
    assert {name for name in AuditLogEntry.objects.values_list("actor_name", flat=True)} == {"t0", "t1"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory lock is PostgreSQL-only")
def test_postgres_append_waits_for_the_open_transaction() -> None:
    """While one transaction holds an appended entry uncommitted, a second appender blocks."""
    started = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def holder() -> None:
        try:
            with transaction.atomic():
                audit_append("holder", via=AuditLogEntry.Via.WEB)
                started.set()
                release.wait(timeout=30)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    result: list[int] = []

    def second() -> None:
        try:
            result.append(audit_append("second", via=AuditLogEntry.Via.WEB).seq)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    first_thread = threading.Thread(target=holder)
    first_thread.start()
    assert started.wait(timeout=30)
    second_thread = threading.Thread(target=second)
    second_thread.start()
    second_thread.join(timeout=0.5)
    assert second_thread.is_alive(), "the second append did not wait for the lock"
    release.set()
    first_thread.join(timeout=30)
    second_thread.join(timeout=30)
    assert not errors, errors
    assert result == [2]
    assert verify_audit_chain().ok
