"""docker-compose.yml's defaults are production ones: DEBUG off, no key anywhere, and nothing but the
web port published beyond the host's loopback."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ENV = COMPOSE["x-app"]["environment"]


def test_debug_is_off_by_default() -> None:
    assert ENV["DEBUG"] == "${DEBUG:-false}"


def test_the_secret_key_is_required_and_has_no_default() -> None:
    # ${VAR:?message}: compose refuses to start without it, naming the variable.
    assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", ENV["SECRET_KEY"])
    # The image's build step (collectstatic) uses a throw-away key generated there and then.
    build = (ROOT / "Dockerfile").read_text()
    assert re.search(r"SECRET_KEY=\"\$\(python -c '[^']*token_urlsafe[^']*'\)\" DEBUG=false", build)


def test_only_the_web_port_is_published_on_every_interface() -> None:
    published = {name: service.get("ports", []) for name, service in COMPOSE["services"].items()}
    assert published["web"] == ["8000:8000"]
    for name, ports in published.items():
        if name != "web":
            assert all(str(port).startswith("127.0.0.1:") for port in ports), (name, ports)
    assert not published["postgres"] and not published["redis"]


def test_production_switches_reach_every_service() -> None:
    for name in ("TRUSTED_PROXY_COUNT", "METRICS_TOKEN", "SECURE_SSL_REDIRECT"):
        assert name in ENV
    for name, service in COMPOSE["services"].items():
        if name.startswith("worker-"):
            assert service["environment"]["SECRET_KEY"] == ENV["SECRET_KEY"], name
