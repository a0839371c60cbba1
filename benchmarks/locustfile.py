"""Locust users for benchmarks/load_bench.py (which writes the data file and starts the stack).

``Browser`` (50 by default): logs in, then reads the queue tabs, review pages, group pages,
package and endpoint timelines, ``/audit/`` search and ``/as-of/``. ``Signer`` (5): logs in with
a role, takes a package from its own queue (``/queue/?group=...``), opens the review page and
posts a sign-off with the form's CSRF token, like a browser: mostly approvals with a comment,
some rejections. Requests are named by page, so locust's statistics are per page. The statistics are reset once
all ``LOAD_BENCH_USERS`` users have logged in, and the run stops ``LOAD_BENCH_DURATION`` seconds later.

    LOAD_BENCH_DATA=/path/data.json locust -f benchmarks/locustfile.py --headless -u 55 -r 10 -t 60s

Refused sign-offs (another signer of the same role took the package a moment earlier) are
answered 4xx by the dashboard on purpose; they are counted apart in ``LOAD_BENCH_SIGNER_OUT``
rather than as errors, and every other non-2xx/3xx answer is a failure.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, between, events, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import browser_login, queue_links, signoff_form_data  # noqa: E402

DATA: dict[str, Any] = json.loads(Path(os.environ["LOAD_BENCH_DATA"]).read_text())
PASSWORD: str = DATA["password"]
SIGNER_OUTCOMES: Counter[str] = Counter()
_LOCK = threading.Lock()
_BROWSER_IDS = itertools.count()
_SIGNER_IDS = itertools.count()
_LOGGED_IN = itertools.count(1)
# The measured window: it opens (statistics reset) once every user has logged in, and the run
# quits DURATION seconds later; the one-off logins (PBKDF2, CPU-heavy) stay out of the figures.
USERS = int(os.environ.get("LOAD_BENCH_USERS", "0"))
DURATION = float(os.environ.get("LOAD_BENCH_DURATION", "0"))


def _logged_in(environment: Environment) -> None:
    if next(_LOGGED_IN) == USERS and DURATION and environment.runner is not None:
        environment.stats.reset_all()
        gevent.spawn_later(DURATION, environment.runner.quit)
        marker = os.environ.get("LOAD_BENCH_WINDOW_OUT")
        if marker:
            Path(marker).write_text(json.dumps({"start": time.time(), "end": time.time() + DURATION}))


def _count(outcome: str) -> None:
    with _LOCK:
        SIGNER_OUTCOMES[outcome] += 1


@events.quitting.add_listener
def _write_outcomes(**_: Any) -> None:
    out = os.environ.get("LOAD_BENCH_SIGNER_OUT")
    if out:
        Path(out).write_text(json.dumps(dict(SIGNER_OUTCOMES)))


class Browser(HttpUser):
    weight = 10
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        users = DATA["browsers"]
        self.username = users[next(_BROWSER_IDS) % len(users)]
        if not browser_login(self.client, "", self.username, PASSWORD, origin=self.host, name="login"):
            raise RuntimeError(f"login failed for {self.username}")
        _logged_in(self.environment)

    def _get(self, url: str, name: str) -> None:
        self.client.get(url, name=name)

    @task(3)
    def queue_mine(self) -> None:
        self._get("/queue/", "/queue/ (mine)")

    @task(2)
    def queue_all(self) -> None:
        self._get("/queue/?tab=all", "/queue/?tab=all")

    @task(1)
    def queue_decided(self) -> None:
        self._get("/queue/?tab=decided", "/queue/?tab=decided")

    @task(4)
    def review_page(self) -> None:
        self._get(random.choice(DATA["review_urls"]), "review page")

    @task(1)
    def group_list(self) -> None:
        self._get("/groups/", "/groups/")

    @task(2)
    def group_page(self) -> None:
        self._get(random.choice(DATA["group_urls"]), "group page")

    @task(2)
    def package_timeline(self) -> None:
        self._get(random.choice(DATA["timeline_urls"]), "package timeline")

    @task(1)
    def endpoint_timeline(self) -> None:
        self._get(random.choice(DATA["endpoint_urls"]), "endpoint timeline")

    @task(1)
    def audit_search(self) -> None:
        self._get(random.choice(DATA["audit_urls"]), "/audit/ search")

    @task(1)
    def as_of(self) -> None:
        self._get(random.choice(DATA["as_of_urls"]), "/as-of/")


class Signer(HttpUser):
    fixed_count = int(os.environ.get("LOAD_BENCH_SIGNERS", "5"))
    wait_time = between(1.0, 2.0)

    def on_start(self) -> None:
        signers = DATA["signers"]
        self.username = signers[next(_SIGNER_IDS) % len(signers)]
        if not browser_login(self.client, "", self.username, PASSWORD, origin=self.host, name="login"):
            raise RuntimeError(f"login failed for {self.username}")
        _logged_in(self.environment)

    @task
    def sign_one(self) -> None:
        group = random.choice(DATA["live_groups"])
        queue = self.client.get(f"/queue/?group={group}", name="/queue/?group= (signer)")
        links = queue_links(queue.text, group)
        if not links:
            _count("queue empty for the group")
            return
        url = random.choice(links)
        page = self.client.get(url, name="review page (signer)")
        reject = random.random() < 0.1
        comment = "Bias metrics regressed on the holdout set; retrain." if reject else "Reviewed under load: ok."
        data = signoff_form_data(page.text, "reject" if reject else "approve", comment)
        if data is None:
            _count("no sign-off form (already signed or decided)")
            return
        action = url.replace("/?source=", "/signoff/?source=")
        with self.client.post(
            action,
            data=data,
            headers={"Origin": self.host, "Referer": f"{self.host}{url}"},
            name="sign-off POST",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code == 302:
                response.success()
                _count("rejected" if reject else "approved")
            elif response.status_code in (400, 403, 409) and "callout-bad" in response.text:
                response.success()  # the dashboard refused on purpose (a race with another signer)
                _count("refused (race)")
            else:
                response.failure(f"sign-off answered {response.status_code}")
