"""Findings, revalidation and policy versions at scale (issue 15: "query counts constant as findings grow;
the queue benchmark unchanged within noise").

Builds the queue benchmark's dataset (``queue_bench.build_dataset``: 10,000 packages in 200 groups,
2,000 pending), publishes a default policy that revalidates every 30 days (so each group's latest
approved version, approved 60 days ago, is overdue), then measures in-process with the Django test
client the median / p95 server time and the SQL query count of the queue tabs (mine, all, decided,
findings, revalidation), the review page and the group page: first with no finding, then with 200
and 2,000 open findings spread over the groups (a third of them blocking, each carried over to the
later versions of its group). Then the cost of raising one finding (the service: row, audit entry,
e-mail row, the stored review state of the versions it applies to).

    .venv/bin/python benchmarks/governance_bench.py [--packages 10000] [--reps 30]

SQLite in a scratch directory unless DATABASE_URL is set (then a scratch database beside it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from typing import Any

from benchlib import measure_pages, pct, pg_drop, pg_scratch, run_phase, setup_django

LEVELS = (0, 200, 2000)


def _policy() -> dict[str, float]:
    """Publish a default policy over every pending package, then an edit of it (v2: one role's flag
    renamed): the publication's cost, which includes moving the pending reviews to the new version
    (the dataset's sign-offs carry no current fingerprint, so none is staled here: the tests cover that)."""
    from django.utils import timezone

    from registry_app.models import ApprovalPolicy, Decision

    Decision.objects.update(created_at=timezone.now() - dt.timedelta(days=60))
    started = time.perf_counter()
    policy = ApprovalPolicy.objects.create(
        name="bench-default", is_default=True, spec={"name": "bench-default", "revalidate_every_days": 30}
    )
    first = time.perf_counter() - started
    policy.spec = {**policy.spec, "role_flags": {"ml-lead": "LeadApproved"}}
    started = time.perf_counter()
    policy.save()
    second = time.perf_counter() - started
    return {
        "publish v1 over the pending packages (s)": round(first, 2),
        "publish v2, a flag renamed (s)": round(second, 2),
    }


def _add_findings(count: int, reviewer_id: int) -> None:
    """``count`` more open findings over the groups (bulk, as a migration would), then the stored review
    state re-derived once (the nightly check's path), so the queue rows carry what blocks."""
    from django.utils import timezone

    from registry_app.models import Finding, ModelPackage
    from registry_app.review.queue_state import review_state_verify

    if count <= 0:
        return
    rng = random.Random(count)
    packages = list(ModelPackage.objects.values_list("pk", "group_id"))
    today = timezone.now().date()
    Finding.objects.bulk_create(
        (
            Finding(
                package_id=pk,
                group_id=group_id,
                title=f"bench finding {i}",
                severity=("low", "medium", "high")[i % 3],
                blocks_approval=i % 3 == 2,
                owner_id=reviewer_id,
                due_date=today + dt.timedelta(days=rng.randint(-20, 60)),
                raised_by_id=reviewer_id,
            )
            for i, (pk, group_id) in enumerate(rng.choices(packages, k=count))
        ),
        batch_size=2000,
    )
    review_state_verify(fix=True)


def _raise_one(data: dict[str, Any], reps: int) -> dict[str, Any]:
    from django.contrib.auth.models import User

    from registry_app.models import ModelPackage
    from registry_app.review.findings import finding_raise

    user = User.objects.get(pk=data["reviewer"])
    ids = list(ModelPackage.objects.filter(approval_status="PendingManualApproval").values_list("pk", flat=True))
    times = []
    for i in range(reps):
        start = time.perf_counter()
        finding_raise(user=user, package_id=ids[i % len(ids)], title=f"timed {i}", severity="medium", owner_id=user.pk)
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(pct(times, 0.95), 1)}


def phase(packages: int, reps: int) -> dict[str, Any]:
    setup_django()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from queue_bench import build_dataset

    from registry_app.models import Finding, ModelPackageGroup

    data = build_dataset(packages, packages * 2)
    published = _policy()
    client = Client()
    client.force_login(User.objects.get(pk=data["reviewer"]))
    rng = random.Random(15)
    names = list(ModelPackageGroup.objects.values_list("name", flat=True))
    groups = [rng.choice(names) for _ in range(reps)]
    reviews = (data["pending_urls"] * (reps // len(data["pending_urls"]) + 1))[:reps]
    levels: dict[str, Any] = {}
    added = 0
    for level in LEVELS:
        _add_findings(level - added, data["reviewer"])
        added = level
        pages = {
            "/queue/ (mine)": ["/queue/"] * reps,
            "/queue/?tab=all": ["/queue/?tab=all"] * reps,
            "/queue/?tab=decided": ["/queue/?tab=decided"] * reps,
            "/queue/?tab=findings": ["/queue/?tab=findings"] * reps,
            "/queue/?tab=revalidation": ["/queue/?tab=revalidation"] * reps,
            "review page": reviews,
            "group page": [f"/groups/{g}/" for g in groups],
        }
        levels[str(level)] = {label: measure_pages(client, urls) for label, urls in pages.items()}
        levels[str(level)]["open findings"] = Finding.objects.count()
        print(json.dumps({"findings": level, "pages": levels[str(level)]}), file=sys.stderr, flush=True)
    return {
        "db": connection.vendor,
        "dataset": {k: data[k] for k in ("packages", "pending", "signoffs")},
        "levels": levels,
        "raise a finding": _raise_one(data, max(10, reps // 2)),
        "policy versions": published,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--phase", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase is not None:
        print(json.dumps(phase(int(args.phase[0]), int(args.phase[1]))))
        return
    env = dict(
        os.environ,
        VAR_DIR=tempfile.mkdtemp(prefix="governance-bench-"),
        DEBUG="true",  # as queue_bench.py and pages_bench.py, so the figures compare
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        LOG_LEVEL="ERROR",
        ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
    )
    scratch = ""
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        scratch = pg_scratch(f"{os.environ['DATABASE_URL'].rpartition('/')[2]}_governance_bench")
        env["DATABASE_URL"] = scratch
    try:
        result = run_phase(__file__, env, str(args.packages), str(args.reps))
    finally:
        if scratch:
            pg_drop(scratch)
    print(json.dumps(result, indent=2))
    labels = list(next(iter(result["levels"].values())))
    labels.remove("open findings")
    print(f"{'page':28} " + "  ".join(f"{level + ' findings':>28}" for level in result["levels"]))
    for label in labels:
        cells = [result["levels"][level][label] for level in result["levels"]]
        print(
            f"{label:28} "
            + "  ".join(f"{c['median_ms']:7.1f} ms p95 {c['p95_ms']:6.1f} q {c['queries']!s:>7}" for c in cells)
        )
    raised = result["raise a finding"]
    print(f"raise a finding: median {raised['median_ms']} ms, p95 {raised['p95_ms']} ms")
    print(f"policy versions: {result['policy versions']}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
