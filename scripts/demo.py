"""`make demo`: the whole dashboard on loopback with nothing but Python >= 3.11.

Starts a moto server (fake AWS), seeds it with a realistic model registry and six months of CloudTrail
logs, migrates a fresh SQLite database, creates one login per role, mirrors the registry (two sources,
full sync), ingests the CloudTrail logs (S3 pass: moto has no LookupEvents), then runs the web server
(gunicorn), a Celery worker and Celery beat, with each child's output prefixed.

DATABASE_URL / REDIS_URL / CELERY_BROKER_URL / SECRET_KEY / VAR_DIR are used when set; otherwise the
demo uses SQLite files under var/demo (deleted at start, so every run is fresh) and the embedded
SQLite Celery broker. AWS credentials are always fake and every AWS call goes to the moto server.

Ctrl-C (or SIGTERM) stops everything and exits 0. If a child dies on its own, everything is stopped
and the script exits 1 with that child's last output lines. ``--no-serve`` stops after the sync.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import FrameType

if sys.version_info < (3, 11):  # noqa: UP036 - the guard is the point: `make demo` may run on an old Python
    sys.exit("Python >= 3.11 is required")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin/ (not resolved: a venv python is a symlink)
DEFAULT_PORT = 8000
STOP_TIMEOUT = 15.0
READY_TIMEOUT = 60.0
TAIL_LINES = 40
PASSWORD = "demo-governance"
SOURCES = (("acme-prod", "eu-west-1"), ("acme-us", "us-east-1"))
CLOUDTRAIL_BUCKET = "acme-cloudtrail"  # the seed writes the trail's log files there
CLOUDTRAIL_BACKFILL_DAYS = 200  # the seeded history spans the last six months
COLORS = {"moto": "35", "setup": "36", "web": "32", "worker": "33", "beat": "34", "sso": "31"}
# Single sign-on against the loopback test provider (registry_app/devtools/fake_oidc.py): its demo users
# sso-mlead, sso-fairness, sso-compliance, sso-admin (staff) and sso-nobody sit in these IdP groups.
SSO_ROLE_MAP = "idp-ml-leads=ml-lead,idp-fairness=fairness,idp-compliance=compliance,idp-admins=staff"


class DemoError(Exception):
    """A step failed; the message says which and shows its last output."""


# --------------------------------------------------------------------------------------------- output

_PRINT_LOCK = threading.Lock()
_USE_COLOR = sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def say(prefix: str, text: str) -> None:
    label = f"[{prefix}]".ljust(9)
    if _USE_COLOR:
        label = f"\033[{COLORS.get(prefix, '0')}m{label}\033[0m"
    with _PRINT_LOCK:
        print(f"{label} {text}", flush=True)


def banner(lines: list[str]) -> None:
    rule = "=" * max(60, max(len(line) for line in lines) + 2)
    with _PRINT_LOCK:
        print(f"\n{rule}", flush=True)
        for line in lines:
            print(f" {line}", flush=True)
        print(f"{rule}\n", flush=True)


# --------------------------------------------------------------------------------------------- children


class Child:
    """A subprocess in its own session (so a terminal Ctrl-C reaches only us), output pumped line by line."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], *, echo: bool = True) -> None:
        self.name = name
        self.argv = argv
        self.echo = echo
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._pump, name=f"pump-{name}", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.rstrip("\n")
            self.tail.append(line)
            if len(self.output) < 10_000:
                self.output.append(line)
            if self.echo:
                say(self.name, line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> int | None:
        return self.proc.poll()

    def last_lines(self) -> str:
        self._reader.join(timeout=2)
        return "\n".join(f"    {line}" for line in self.tail) or "    (no output)"

    def stop(self, timeout: float) -> None:
        """SIGTERM the child, wait, then SIGKILL its whole process group (pool workers included)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                say(self.name, f"did not stop within {timeout:.0f}s: killing process group {self.pid}")
            except ProcessLookupError:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # leftovers (gunicorn/celery workers) of the group we created
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            say(self.name, f"process {self.pid} is still running after SIGKILL")
        self._reader.join(timeout=2)


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stop_signal: int | None = None
        self._force = False

    # signals -------------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_signal is not None:
            self._force = True  # a second Ctrl-C: do not wait for graceful shutdowns
        self.stop_signal = signum

    @property
    def stopping(self) -> bool:
        return self.stop_signal is not None

    # children ------------------------------------------------------------------------------------
    def start(self, name: str, argv: list[str], env: dict[str, str], *, echo: bool = True) -> Child:
        child = Child(name, argv, env, echo=echo)
        self.children.append(child)
        return child

    def run_step(self, name: str, argv: list[str], env: dict[str, str], *, echo: bool = True) -> Child:
        """Run a setup command to completion; raise DemoError (with its last lines) if it fails."""
        say("setup", "$ " + " ".join(_shorten(arg) for arg in argv))
        started = time.monotonic()
        child = self.start(name, argv, env, echo=echo)
        while child.exited() is None:
            if self.stopping:
                return child
            time.sleep(0.1)
        self.children.remove(child)
        child.stop(1)  # reaps and drains the output
        if child.proc.returncode != 0:
            raise DemoError(
                f"`{' '.join(argv[1:3])}` failed with exit code {child.proc.returncode}:\n{child.last_lines()}"
            )
        say("setup", f"  ({time.monotonic() - started:.1f} s)")
        return child

    def stop_all(self) -> None:
        # Reverse start order: web, beat and worker first, the fake AWS last.
        for child in reversed(self.children):
            if child.exited() is None:
                say(child.name, f"stopping (pid {child.pid})")
            child.stop(0.5 if self._force else STOP_TIMEOUT)
        self.children.clear()

    def wait_until(self, what: str, check: Callable[[], bool], watch: Child, timeout: float = READY_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping:
                return False
            if watch.exited() is not None:
                raise DemoError(
                    f"{watch.name} exited with code {watch.proc.returncode} before {what}:\n{watch.last_lines()}"
                )
            if check():
                return True
            time.sleep(0.25)
        raise DemoError(f"{watch.name}: {what} did not happen within {timeout:.0f}s:\n{watch.last_lines()}")

    def watch_forever(self) -> None:
        """Until a signal: if any child exits on its own, raise with its last output lines."""
        while not self.stopping:
            for child in self.children:
                code = child.exited()
                if code is not None and not self.stopping:
                    raise DemoError(
                        f"{child.name} (pid {child.pid}) exited unexpectedly with code {code}:\n{child.last_lines()}"
                    )
            time.sleep(0.3)


def _shorten(arg: str) -> str:
    return arg.replace(str(ROOT) + os.sep, "")


# --------------------------------------------------------------------------------------------- helpers


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def choose_web_port(requested: int | None) -> int:
    if requested:
        if not port_is_free(requested):
            raise DemoError(f"port {requested} on 127.0.0.1 is in use; pick another with --port")
        return requested
    return DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()


def http_answers(url: str, *, want_ok: bool = False) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # a loopback URL we built
            return bool(response.status < 400) or not want_ok
    except urllib.error.HTTPError:
        return not want_ok  # an HTTP error still proves the server is up
    except (urllib.error.URLError, OSError):
        return False


def tool(name: str, module: str) -> list[str]:
    """The venv's console script if installed next to this interpreter, else ``python -m module``."""
    script = BIN / name
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def build_env(web_port: int, moto_port: int, var_dir: Path, mail_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Never let the demo reach real AWS: no profile, no shared config or session token from the shell.
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN"):
        env.pop(key, None)
    site = f"http://127.0.0.1:{web_port}"
    env.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "true",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "SITE_URL": site,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": f"{site},http://localhost:{web_port}",
            "VAR_DIR": str(var_dir),
            # One .eml file per message (a mail client opens it); review requests collected for 20 s, not 5 min.
            "EMAIL_BACKEND": "registry_app.notifications.mail_files.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            "NOTIFY_BATCH_SECONDS": os.environ.get("NOTIFY_BATCH_SECONDS", "20"),
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "AWS_ACCESS_KEY_ID": "demo-access-key",
            "AWS_SECRET_ACCESS_KEY": "demo-secret-key",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    return env


def sso_env(oidc_port: int) -> dict[str, str]:
    """Point the web process at the fake provider (the client id and secret are the provider's demo ones)."""
    from registry_app.devtools.fake_oidc import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    return {
        "OIDC_OP_ISSUER": f"http://127.0.0.1:{oidc_port}",
        "OIDC_RP_CLIENT_ID": DEMO_CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "OIDC_PROVIDER_NAME": "Acme SSO (test provider)",
        "OIDC_ROLE_MAP": SSO_ROLE_MAP,
    }


def backfill_since() -> str:
    import datetime as dt

    return (dt.date.today() - dt.timedelta(days=CLOUDTRAIL_BACKFILL_DAYS)).isoformat()


def fresh_state(var_dir: Path) -> None:
    """Delete the previous run's SQLite database, Celery broker and beat schedule (only when using SQLite)."""
    names = ["celery-broker.sqlite3", "celerybeat-schedule"]
    if not os.environ.get("DATABASE_URL"):
        names.append("governance.sqlite3")
    for name in names:
        for suffix in ("", "-wal", "-shm", "-journal", ".db", ".dat", ".dir", ".bak"):
            path = var_dir / f"{name}{suffix}"
            if path.is_file():
                path.unlink()


# --------------------------------------------------------------------------------------------- the demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--port", type=int, default=None, help=f"Web port on 127.0.0.1 (default {DEFAULT_PORT} if free)."
    )
    parser.add_argument("--no-serve", action="store_true", help="Seed and sync, then exit 0 (smoke test).")
    parser.add_argument("--password", default=PASSWORD, help="Password of every demo login.")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, sup: Supervisor) -> int:
    started = time.monotonic()
    var_dir = Path(os.environ.get("VAR_DIR") or ROOT / "var" / "demo").resolve()
    # One .eml per message; beside the throwaway state when VAR_DIR is given, else var/demo-mail/.
    mail_dir = (var_dir / "mail" if os.environ.get("VAR_DIR") else ROOT / "var" / "demo-mail").resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    mail_dir.mkdir(parents=True, exist_ok=True)
    fresh_state(var_dir)
    web_port = choose_web_port(args.port)
    moto_port = free_port()
    oidc_port = free_port()
    env = build_env(web_port, moto_port, var_dir, mail_dir)
    env.update(sso_env(oidc_port))
    site = env["SITE_URL"]

    # 1. Fake AWS: moto's server with the AWS-faithful layer (docs/aws-fake.md).
    moto_url = env["AWS_ENDPOINT_URL"]
    fake_aws = [sys.executable, "-m", "registry_app.devtools.aws_fake", "-H", "127.0.0.1", "-p", str(moto_port)]
    moto = sup.start("moto", fake_aws, env, echo=False)
    if not sup.wait_until("answering HTTP", lambda: http_answers(f"{moto_url}/moto-api/"), moto):
        return 0
    say("moto", f"AWS-faithful fake ready at {moto_url} (pid {moto.pid}; request log kept quiet)")

    # 2. Database, logins, registry content, mirror.
    steps: list[tuple[list[str], bool]] = [
        (manage("migrate", "--noinput"), True),
        (manage("create_demo_users", "--password", args.password), False),
        (manage("create_demo_policies"), True),
        (manage("seed_demo_registry"), True),
        *[
            (manage("add_registry_source", name, "--region", region, "--cloudtrail-bucket", CLOUDTRAIL_BUCKET), True)
            for name, region in SOURCES
        ],
        (manage("sync_registry", "--full"), True),
        # After the mirror exists, so events link to packages; --since reaches back past the 90-day default.
        (manage("sync_audit", "--only", "s3", "--since", backfill_since()), True),
        # Now the dashboard watches: an outside approval in Studio, a revocation and a push conflict
        # (registry_app/devtools/demo_scenes.py); its incremental sync lets the mirror observe them.
        (manage("stage_demo_scenes"), True),
        # A bearer token for the deploy-gate API (/api/v1/, docs/deploy-gate.md), printed in the banner.
        (manage("create_api_token", "demo-pipeline", "--token-only"), False),
    ]
    users_table: list[str] = []
    api_token = ""
    for argv, echo in steps:
        child = sup.run_step("setup", argv, env, echo=echo)
        if sup.stopping:
            return 0
        if argv[2] == "create_demo_users":
            users_table = child.output
            for line in users_table:
                say("setup", line)
        if argv[2] == "create_api_token":
            api_token = next((line.strip() for line in child.output if line.strip().startswith("gov_")), "")

    database = os.environ.get("DATABASE_URL") or f"SQLite {var_dir / 'governance.sqlite3'} (fresh each run)"
    broker = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or "embedded SQLite broker"
    if args.no_serve:
        banner(
            [
                f"Demo seeded and synced in {time.monotonic() - started:.0f} s (--no-serve): stopping the fake AWS.",
                f"Database: {database}",
            ]
        )
        return 0

    # 3. The fake identity provider (single sign-on), then web, worker, beat.
    sso = sup.start(
        "sso",
        [
            sys.executable,
            "-m",
            "registry_app.devtools.fake_oidc",
            "--port",
            str(oidc_port),
            "--redirect-uri",
            f"{site}/oidc/callback/",
            "--redirect-uri",
            f"http://localhost:{web_port}/oidc/callback/",
        ],
        env,
    )
    issuer = env["OIDC_OP_ISSUER"]
    if not sup.wait_until(
        "answering discovery", lambda: http_answers(f"{issuer}/.well-known/openid-configuration", want_ok=True), sso
    ):
        return 0
    web = sup.start(
        "web",
        [
            *tool("gunicorn", "gunicorn"),
            "governance.wsgi",
            "-b",
            f"127.0.0.1:{web_port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "10",
        ],
        env,
    )
    # One worker for every queue (no -Q: sync, push, audit, email and the default), with room for a
    # push beside the syncs and the audit ingest; production runs a worker per queue (docs/scaling.md).
    sup.start(
        "worker", [*tool("celery", "celery"), "-A", "governance", "worker", "-l", "info", "--concurrency", "4"], env
    )
    sup.start("beat", [*tool("celery", "celery"), "-A", "governance", "beat", "-l", "info"], env)
    if not sup.wait_until("serving the login page", lambda: http_answers(f"{site}/accounts/login/", want_ok=True), web):
        return 0

    banner(
        [
            f"SageMaker Model Registry governance dashboard: demo ready in {time.monotonic() - started:.0f} s",
            "",
            f"  Dashboard   {site}/",
            f"  Log in      {site}/accounts/login/",
            f"  Admin       {site}/admin/",
            "",
            "  Demo logins:",
            *[f"  {line}" for line in users_table[1:]],
            "",
            f'  Single sign-on: "Sign in with Acme SSO (test provider)" on the login page; the fake IdP at {issuer}',
            "  lets you pick sso-mlead, sso-fairness, sso-compliance (roles from their IdP groups),",
            "  sso-admin (staff) or sso-nobody (no role). Role map: " + SSO_ROLE_MAP,
            "",
            f"  Deploy gate curl -H 'Authorization: Bearer {api_token}' \\",
            f"                   {site}/api/v1/groups/fraud-detector/approved/latest",
            f"  Emails      one .eml file per message in {mail_dir} (open them in a mail client)",
            f"  Fake AWS    AWS-faithful fake (moto + docs/aws-fake.md) at {moto_url} (eu-west-1 + us-east-1)",
            f"  CloudTrail  s3://{CLOUDTRAIL_BUCKET}/AWSLogs/ (six months of history, ingested; beat every 5 min)",
            f"  Database    {database}",
            f"  Broker      {broker}",
            "",
            "  Ctrl-C stops everything.",
        ]
    )
    sup.watch_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sup = Supervisor()
    sup.install_signal_handlers()
    code = 0
    try:
        code = run(args, sup)
    except DemoError as exc:
        say("setup", f"ERROR: {exc}")
        code = 1
    finally:
        if sup.stopping:
            say("setup", f"received {signal.Signals(sup.stop_signal or signal.SIGINT).name}: stopping everything")
        sup.stop_all()
    if code == 0:
        say("setup", "all processes stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
