"""Helpers shared by the benchmark scripts (each script runs its phases in child processes)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def run_phase(script: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run ``script --phase args...`` in a child process; its last stdout line is the JSON result."""
    out = subprocess.run(
        [sys.executable, script, "--phase", *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"phase {args} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_fake(port: int, env: dict[str, str] | None = None, *, keep_alive: bool = False) -> subprocess.Popen[bytes]:
    """The AWS-faithful fake (moto's server with AWS's UpdateModelPackage merge, Search paging, lineage,
    ListPublicKeys and the rest, docs/aws-fake.md) on loopback in its own process, answering before this
    returns. Plain moto blanks what an update leaves out, so a push's fingerprint re-check would see
    changed content.

    ``keep_alive``: served by gunicorn's threaded worker, which keeps connections alive as AWS does,
    instead of moto's werkzeug server, which closes each one (so each call there pays a TCP connect:
    ~0.3 ms of client CPU per call, measured in docs/benchmarks.md)."""
    if keep_alive:
        argv = [
            str(Path(sys.executable).with_name("gunicorn")),
            *("-w", "1", "-k", "gthread", "--threads", "8", "--keep-alive", "75", "-b", f"127.0.0.1:{port}"),
            "registry_app.devtools.aws_fake.wsgi:app",
        ]
        env = {**(env if env is not None else os.environ), "MOTO_PORT": str(port)}
    else:
        argv = [sys.executable, "-m", "registry_app.devtools.aws_fake", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the AWS fake did not start on port {port}")


def timed_sync(mode: str, *, name: str = "bench", region: str = "eu-west-1") -> tuple[Any, Any, float, int]:
    """Run ``sync_source`` on the benchmark's source (made on first use) in this process:
    ``(source, run, wall seconds, SQL statements)``."""
    from django.db import connection

    from registry_app.mirror.execute import sync_source
    from registry_app.models import RegistrySource

    source, _ = RegistrySource.objects.get_or_create(name=name, defaults={"region": region})
    counter = QueryCounter()
    start = time.perf_counter()
    with connection.execute_wrapper(counter):
        run = sync_source(source, mode=mode)
    return source, run, time.perf_counter() - start, counter.count


class QueryCounter:
    """``with connection.execute_wrapper(counter):`` counts the SQL statements run inside."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# --------------------------------------------------------------------------------------------- full stack
# Used by load_bench.py and soak_bench.py: a private Redis, a scratch PostgreSQL database, gunicorn,
# a Celery worker consuming every configured queue, and browser-like logins and sign-offs.

PG_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"


def stack_env(tmp: Path, site: str, redis_port: int, **overrides: str) -> dict[str, str]:
    """The environment of a benchmark's gunicorn + Celery stack on loopback: production settings
    (``DEBUG`` off, a fresh key) over plain HTTP, files under ``tmp``, a private Redis as broker and
    cache, no AWS profile files, emails kept in memory; ``overrides`` add or replace variables."""
    env = dict(
        os.environ,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SITE_URL=site,
        # Plain HTTP on loopback: whatever the hardening defaults, no HTTPS redirect or secure cookies here.
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="0",
        LOG_LEVEL="WARNING",
        VAR_DIR=str(tmp / "var"),
        STATIC_ROOT=str(tmp / "static"),
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    env.pop("CELERY_BROKER_URL", None)
    env.update(overrides)
    return env


def pg_scratch(name: str) -> str:
    """A fresh PostgreSQL database ``name`` on DATABASE_URL's server (else local), returned as a URL."""
    import psycopg

    base = (os.environ.get("DATABASE_URL") or PG_DEFAULT).rpartition("/")[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def pg_drop(url: str | None) -> None:
    if not url:
        return
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_terminate(url: str) -> int:
    """Drop every connection to the database of ``url`` (other than this one); returns how many."""
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def start_redis(port: int, workdir: str) -> None:
    """A private, non-persistent redis-server on loopback (daemonized); stop it with ``stop_redis``."""
    if _port_open(port):
        raise SystemExit(f"port {port} is already in use: stop whatever listens there (a previous run's Redis?)")
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--dir",
            workdir,
            "--pidfile",
            str(Path(workdir) / f"redis-{port}.pid"),
            "--logfile",
            str(Path(workdir) / f"redis-{port}.log"),
        ],
        check=True,
    )
    for _ in range(100):
        if _port_open(port):
            return
        time.sleep(0.05)
    raise SystemExit(f"redis-server did not start on port {port}")


def stop_redis(port: int) -> None:
    if _port_open(port):
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, check=False)
    for _ in range(100):
        if not _port_open(port):
            return
        time.sleep(0.05)


def celery_queues(env: dict[str, str]) -> list[str]:
    """Every queue name the settings route tasks to (the default queue, CELERY_TASK_QUEUES, the
    queues named in CELERY_TASK_ROUTES, and any other CELERY_*QUEUE* string setting), so a worker
    started with ``-Q`` consumes all of them however the queues are split."""
    code = (
        "import json, os, django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'governance.settings')\n"
        "django.setup()\n"
        "from django.conf import settings as s\n"
        "names = {s.CELERY_TASK_DEFAULT_QUEUE}\n"
        "for q in getattr(s, 'CELERY_TASK_QUEUES', None) or ():\n"
        "    names.add(q if isinstance(q, str) else getattr(q, 'name', None) or q.get('name'))\n"
        "routes = getattr(s, 'CELERY_TASK_ROUTES', None) or {}\n"
        "for table in routes if isinstance(routes, (list, tuple)) else [routes]:\n"
        "    for route in (table.values() if isinstance(table, dict) else []):\n"
        "        queue = route if isinstance(route, str) else (route or {}).get('queue')\n"
        "        names.add(getattr(queue, 'name', queue))\n"
        "for key in dir(s):\n"
        "    value = getattr(s, key)\n"
        "    if key.startswith('CELERY_') and 'QUEUE' in key and isinstance(value, str) and value:\n"
        "        names.add(value)\n"
        "    if key.startswith('CELERY_') and 'QUEUE' in key and isinstance(value, dict):\n"
        "        names.update(v for v in value.values() if isinstance(v, str))\n"
        "print(json.dumps(sorted(n for n in names if n)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def start_worker(env: dict[str, str], queues: list[str], concurrency: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``celery -A governance worker`` (as scripts/demo.py runs it) in its own process group."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "governance", "worker", "-l", "warning"]
            + ["--concurrency", str(concurrency), "-Q", ",".join(queues), "-n", f"bench-{os.getpid()}@%h"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(proc: subprocess.Popen[bytes] | None, sig: int = 9) -> None:
    """Stop the process group ``proc`` leads (a worker and its pool children) and reap it: SIGTERM goes
    to the leader (which stops its children), any other signal (SIGKILL) to the whole group at once."""
    if proc is None or proc.poll() is not None:
        return
    import signal

    try:
        if sig == signal.SIGTERM:
            proc.terminate()  # the leader shuts its children down (a warm shutdown for Celery)
        else:
            os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group
    if proc.poll() is None:
        proc.wait(timeout=20)


def start_gunicorn(
    env: dict[str, str], port: int, workers: int, threads: int, log_path: Path, *, keep_alive: int = 30
) -> subprocess.Popen[bytes]:
    """gunicorn (gthread) serving governance.wsgi on 127.0.0.1:port, answering the login page before this returns."""
    import urllib.request

    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "governance.wsgi", "-b", f"127.0.0.1:{port}"]
            + ["--workers", str(workers), "--threads", str(threads), "--timeout", "120", "--graceful-timeout", "10"]
            # Idle keep-alive connections stay open longer than a user's think time (as behind a load
            # balancer), so the server never closes one the client is just reusing (a reset, not an app error).
            + ["--keep-alive", str(keep_alive)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    kill_group(proc)
    raise SystemExit(f"gunicorn did not answer the login page on port {port}; see {log_path}")


CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def form_csrf(html: str) -> str | None:
    match = CSRF_INPUT.search(html)
    return match.group(1) if match else None


def browser_login(session: Any, base_url: str, username: str, password: str, *, origin: str = "", **kw: Any) -> bool:
    """Log in through the login form like a browser (CSRF token from the page, Origin header);
    ``session`` is a requests.Session, or a locust HttpSession with ``base_url=""`` and
    ``origin=self.host``. True when the login took."""
    origin = origin or base_url
    page = session.get(f"{base_url}/accounts/login/", **kw)
    token = form_csrf(page.text) or session.cookies.get("csrftoken", "")
    response = session.post(
        f"{base_url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/groups/"},
        headers={"Origin": origin, "Referer": f"{origin}/accounts/login/"},
        allow_redirects=False,
        **kw,
    )
    return response.status_code == 302 and "sessionid" in session.cookies


PACKAGE_LINK = re.compile(r'href="(/packages/([\w.-]+)/(\d+)/\?source=[\w%.-]+)(?:#review)?"')
ROLE_INPUT = re.compile(r'name="role" value="([^"]+)"')


def queue_links(html: str, group: str) -> list[str]:
    """Review-page links of ``group``'s packages on a queue page."""
    return sorted({m.group(1) for m in PACKAGE_LINK.finditer(html) if m.group(2) == group})


def signoff_form_data(html: str, decision: str, comment: str) -> dict[str, str] | None:
    """The POST body a browser sends from the review page's sign-off form; None without a form."""
    token = form_csrf(html) if 'class="signoff-form"' in html else None
    if not token:
        return None
    data = {"csrfmiddlewaretoken": token, "decision": decision, "comment": comment}
    role = ROLE_INPUT.search(html)
    if role:
        data["role"] = role.group(1)
    return data


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so a stopped benchmark still runs its ``finally`` clean-up
    (its worker, gunicorn, moto, Redis and scratch database); SIGINT is often ignored in background jobs."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def measure_pages(client: Any, urls: list[str]) -> dict[str, Any]:
    """GET each URL with a logged-in test client (after one warm-up request): median and p95 server
    time, the distinct SQL query counts, the largest response; every answer must be 200."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(urls[0])  # warm templates and caches
    times, queries, sizes = [], set(), set()
    for url in urls:
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        queries.add(len(ctx.captured_queries))
        sizes.add(len(response.content))
    return {
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(pct(times, 0.95), 1),
        "queries": sorted(queries),
        "bytes": max(sizes),
    }
