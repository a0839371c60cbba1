"""Structured logs: JSON lines carrying request_id and user; X-Request-ID accepted when sane and echoed."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from registry_app.ops.logs import FIELDS, bind, clean_request_id, current, log_context, reset
from tests.conftest import AWS_ENV
from tests.factories import UserFactory
from tests.ops.conftest import JsonLines

ROOT = Path(__file__).resolve().parents[2]
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def request_lines(lines: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("logger") == "registry_app.request" and line.get("path") == path]


def test_a_request_line_is_json_with_request_id_and_user(client: Client, db: None, json_logs: JsonLines) -> None:
    user = UserFactory(username="olive")
    client.force_login(user)

    response = client.get("/groups/", headers={"X-Request-ID": "lb-7f3a9c"})

    assert response.status_code == 200
    assert response["X-Request-ID"] == "lb-7f3a9c"
    (line,) = request_lines(json_logs(), "/groups/")
    assert line["request_id"] == "lb-7f3a9c"
    assert line["user"] == "olive"
    assert line["level"] == "INFO"
    assert line["message"] == "GET /groups/ 200"
    assert line["method"] == "GET" and line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["time"]
    assert {"task_id", "task_name", "source"} <= set(line)  # same schema everywhere, null outside tasks
    assert line["task_id"] is None


def test_anonymous_requests_log_a_null_user_and_get_a_generated_id(
    client: Client, db: None, json_logs: JsonLines
) -> None:
    response = client.get("/groups/")  # redirected to the login page
    assert response.status_code == 302
    (line,) = request_lines(json_logs(), "/groups/")
    assert line["user"] is None
    assert GENERATED_ID.fullmatch(line["request_id"])
    assert response["X-Request-ID"] == line["request_id"]


@pytest.mark.parametrize("bad", ["has spaces", "x" * 129, "-leading-dash", "a\tb", "<script>"])
def test_an_insane_incoming_request_id_is_replaced(client: Client, db: None, bad: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    assert GENERATED_ID.fullmatch(response["X-Request-ID"])


@pytest.mark.parametrize(
    "good", ["5b1f4f8e-9a1c-4a8e-9d7e-2c3a1b0e9f11", "Root=1-67891233-abcdef012345678912345678", "req_1.2:3"]
)
def test_sane_request_ids_are_kept(good: str) -> None:
    assert clean_request_id(good) == good


def test_lines_logged_inside_a_view_carry_the_request_id(
    client: Client, db: None, settings: Any, json_logs: JsonLines
) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # /readyz logs the broker failure
    response = client.get("/readyz", headers={"X-Request-ID": "probe-1"})
    assert response.status_code == 503
    (warning,) = [line for line in json_logs() if line["logger"] == "registry_app.ops.health"]
    assert warning["level"] == "WARNING"
    assert warning["request_id"] == "probe-1"
    assert warning["message"].startswith("readiness: broker check failed")


def test_djangos_own_error_lines_carry_the_request_id(client: Client, db: None, json_logs: JsonLines) -> None:
    """``django.request`` logs a 404 after the middleware chain returned: the id comes from the request."""
    client.get("/no-such-page/", headers={"X-Request-ID": "missing-1"})
    (line,) = [line for line in json_logs() if line["logger"] == "django.request"]
    assert line["request_id"] == "missing-1"
    assert line["status_code"] == 404


def test_probe_lines_are_debug(client: Client, db: None, json_logs: JsonLines) -> None:
    client.get("/healthz")
    (line,) = request_lines(json_logs(), "/healthz")
    assert line["level"] == "DEBUG"


def test_context_outside_requests_and_explicit_extra(json_logs: JsonLines) -> None:
    log = logging.getLogger("tests.ops")
    log.info("bare")
    with log_context(source="prod", task_id="t-1"):
        log.info("bound")
        log.info("explicit", extra={"source": "other"})  # an explicit extra wins over the context
    bare, bound, explicit = [line for line in json_logs() if line["logger"] == "tests.ops"]
    assert all(bare[name] is None for name in FIELDS)
    assert (bound["source"], bound["task_id"], bound["request_id"]) == ("prod", "t-1", None)
    assert explicit["source"] == "other"
    assert current() == {}


def test_bind_refuses_unknown_fields_and_reset_restores() -> None:
    with pytest.raises(ValueError, match="unknown log context fields"):
        bind(colour="blue")
    token = bind(user="ann")
    inner = bind(user="bob", source="s")
    assert current() == {"user": "bob", "source": "s"}
    reset(inner)
    assert current() == {"user": "ann"}
    reset(token)
    assert current() == {}


def _log_in_subprocess(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import django, logging, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'governance.settings'; django.setup(); "
        "logging.getLogger('probe').warning('hello')"
    )
    base = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(ROOT / "var"), **AWS_ENV}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_json_is_the_default_with_debug_off_and_log_format_overrides() -> None:
    production = {"DEBUG": "false", "SECRET_KEY": "k" * 20 + "-Zx9!q" + "p" * 30}
    result = _log_in_subprocess(production)
    assert result.returncode == 0, result.stderr
    assert '"message": "hello"' in result.stderr and '"request_id": null' in result.stderr

    result = _log_in_subprocess({**production, "LOG_FORMAT": "plain"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.rstrip().endswith("WARNING probe hello")

    development = {"DEBUG": "true", "SECRET_KEY": "a-development-key"}
    result = _log_in_subprocess(development)
    assert result.stderr.rstrip().endswith("WARNING probe hello")  # plain in development
    result = _log_in_subprocess({**development, "LOG_FORMAT": "json"})
    assert '"logger": "probe"' in result.stderr

    result = _log_in_subprocess({**development, "LOG_FORMAT": "xml"})
    assert result.returncode != 0
    assert "LOG_FORMAT='xml'" in result.stderr
