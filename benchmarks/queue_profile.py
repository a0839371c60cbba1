"""Where a queue request's server time goes: cProfile over ``--reps`` requests of ``/queue/?tab=all``
(in-process, Django's test client), on queue_bench's dataset in a scratch PostgreSQL database (or
SQLite without DATABASE_URL), split into SQL (cursor execution, driver included), template rendering
(minus the SQL it triggers), and the rest (middleware, session, auth, view code, response).

    .venv/bin/python benchmarks/queue_profile.py [--packages 10000] [--signoffs 20000] [--reps 200]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import pg_drop, pg_scratch, setup_django  # noqa: E402

SQL_FUNCS = ("execute", "_execute", "_execute_with_wrappers", "fetchmany", "fetchall", "fetchone")


def _total(stats: pstats.Stats, match: callable) -> float:  # type: ignore[valid-type]
    """Cumulative seconds of the outermost frames matching ``match`` (callers that also match excluded)."""
    total = 0.0
    for func, (_cc, _nc, _tt, ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if match(func) and not any(match(caller) for caller in callers):
            total += ct
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--signoffs", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
    scratch = pg_scratch("gov_queue_profile") if os.environ.get("DATABASE_URL") else None
    if scratch:
        os.environ["DATABASE_URL"] = scratch
    try:
        setup_django()
        from django.contrib.auth.models import User
        from django.db import connection
        from django.test import Client
        from queue_bench import build_dataset

        data = build_dataset(args.packages, args.signoffs)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        client = Client()
        client.force_login(User.objects.get(pk=data["reviewer"]))
        for _ in range(10):
            client.get("/queue/?tab=all")  # warm templates and connections
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for _ in range(args.reps):
            client.get("/queue/?tab=all")
        profiler.disable()
        wall_ms = (time.perf_counter() - start) * 1000 / args.reps
        stats = pstats.Stats(profiler)
        total = sum(tt for (_cc, _nc, tt, _ct, _c) in stats.stats.values())  # type: ignore[attr-defined]

        def is_sql(func: tuple[str, int, str]) -> bool:
            return ("django/db/backends" in func[0] or "psycopg" in func[0] or "sqlite3" in func[0]) and func[
                2
            ] in SQL_FUNCS

        def cumulative(path_part: str, name: str) -> float:
            return sum(
                ct
                for (file, _line, func), (_cc, _nc, _tt, ct, _c) in stats.stats.items()  # type: ignore[attr-defined]
                if path_part in file and func == name
            )

        sql = _total(stats, is_sql)
        view = cumulative("registry_app/views/queue.py", "queue")
        render = cumulative("django/shortcuts.py", "render")
        per = 1000 / args.reps
        print(f"# /queue/?tab=all, {args.reps} requests, {data['packages']} packages, db={connection.vendor}")
        print(f"wall per request (profiled, cProfile overhead included): {wall_ms:.1f} ms")
        print(f"  middleware, session, auth, CSRF around the view: {(total - view) * per:.1f} ms")
        print(f"  the view: {view * per:.1f} ms, of which template rendering {render * per:.1f} ms")
        print(f"  SQL (execute + fetch, driver included, anywhere): {sql * per:.1f} ms")
        stats.sort_stats("cumulative").print_stats(25)
    finally:
        if scratch:
            pg_drop(scratch)


if __name__ == "__main__":
    main()
