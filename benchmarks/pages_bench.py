"""Review page, comparison page and chart rendering benchmark (issue 11: "Speed").

Builds the queue benchmark's dataset (``queue_bench.build_dataset``: 10,000 packages, 2,000 pending,
in 200 groups, one report with three metrics each, sign-offs), gives every report a ROC curve, a
precision-recall curve (200 points each) and a confusion matrix, then measures in-process with the
Django test client: median and p95 server time and the SQL query count of the review page, of the
comparison page (2 and 6 versions) and of the group page (with its trend chart), over different
groups so a constant query count shows as a single number. Then the median time to render each chart
server-side (ROC with the approved version overlaid, precision-recall, confusion matrix, group trend).

    .venv/bin/python benchmarks/pages_bench.py [--packages 10000] [--reps 30]

SQLite in a scratch directory unless DATABASE_URL is set (then that database must be a scratch one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from typing import Any

from benchlib import measure_pages, run_phase, setup_django


def _curve(points: int, power: float, x_label: str, y_label: str, falling: bool = False) -> dict[str, Any]:
    xs = [i / (points - 1) for i in range(points)]
    ys = [(1 - x**power) if falling else x ** (1 / power) for x in xs]
    return {"x": xs, "y": ys, "x_label": x_label, "y_label": y_label}


ROC = _curve(200, 3.0, "False positive rate", "True positive rate")
PR = _curve(200, 2.5, "Recall", "Precision", falling=True)
MATRIX = {"labels": ["0", "1"], "matrix": [[880, 20], [35, 65]]}


def enrich() -> None:
    from registry_app.models import EvaluationReport

    EvaluationReport.objects.update(curves={"roc": ROC, "precision_recall": PR}, confusion_matrix=MATRIX)


def time_pages(data: dict[str, Any], reps: int) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.test import Client

    from registry_app.models import ModelPackageGroup

    rng = random.Random(11)
    client = Client()
    client.force_login(User.objects.get(pk=data["reviewer"]))
    names = list(ModelPackageGroup.objects.values_list("name", flat=True))
    groups = [rng.choice(names) for _ in range(reps)]
    reviews = (data["pending_urls"] * (reps // len(data["pending_urls"]) + 1))[:reps]
    return {
        "review page": measure_pages(client, reviews),
        "compare, 2 versions": measure_pages(client, [f"/groups/{g}/compare/?versions=1,2" for g in groups]),
        "compare, 6 versions": measure_pages(
            client, [f"/groups/{g}/compare/?versions=1,10,20,30,40,50" for g in groups]
        ),
        "group page (versions + trend)": measure_pages(client, [f"/groups/{g}/" for g in groups]),
    }


def _median_ms(fn: Any, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def time_charts(reps: int) -> dict[str, float]:
    from django.template import Context, Template

    from registry_app.evidence.trend import chart_groups, trend_svg, trends
    from registry_app.templatetags.registry_tags import curve_chart

    old_roc = _curve(200, 2.2, "False positive rate", "True positive rate")
    matrix = Template("{% load registry_tags %}{% matrix_table m 'cm' 'binary_classification' %}")
    rows = [(v, v % 7 == 0, [("auc", 0.8 + 0.1 * math.sin(v)), ("f1", 0.7 + 0.05 * math.cos(v))]) for v in range(1, 51)]
    found = trends(rows)
    return {
        "ROC, 200 points + approved overlay (ms)": _median_ms(
            lambda: curve_chart(ROC, "ROC curve", baseline=old_roc, baseline_label="Approved v3"), reps
        ),
        "precision-recall, 200 points (ms)": _median_ms(lambda: curve_chart(PR, "Precision-recall curve"), reps),
        "confusion matrix 2x2 (ms)": _median_ms(lambda: matrix.render(Context({"m": MATRIX})), reps),
        "trend, 50 versions x 2 metrics (ms)": _median_ms(
            lambda: [trend_svg(g, "t") for g in chart_groups(found)], reps
        ),
    }


def phase(packages: int, reps: int) -> dict[str, Any]:
    setup_django()
    from django.db import connection
    from queue_bench import build_dataset

    started = time.perf_counter()
    data = build_dataset(packages, packages * 2)
    enrich()
    built = round(time.perf_counter() - started, 1)
    keys = ("packages", "pending", "signoffs")
    return {
        "db": connection.vendor,
        "dataset": {**{k: data[k] for k in keys}, "build_s": built},
        "pages": time_pages(data, reps),
        "charts": time_charts(200),
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
        VAR_DIR=tempfile.mkdtemp(prefix="pages-bench-"),
        DEBUG="true",  # as queue_bench.py, so the figures compare
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        LOG_LEVEL="ERROR",
        ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
    )
    result = run_phase(__file__, env, str(args.packages), str(args.reps))
    print(json.dumps(result, indent=2))
    for label, row in result["pages"].items():
        print(f"{label:32} median {row['median_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms  queries {row['queries']}")
    for label, ms in result["charts"].items():
        print(f"{label:45} {ms:7.3f}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
