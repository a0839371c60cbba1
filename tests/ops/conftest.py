"""Fixtures for the operations endpoints: JSON log capture through the configured formatter and filter."""

from __future__ import annotations

import copy
import io
import json
import logging
import logging.config
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings

JsonLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    """Root-logger records as ``settings.LOGGING`` writes them with ``LOG_FORMAT=json``, parsed.

    The formatter and the context filter are built from the settings' own definitions (through
    ``logging.config``), so the test sees what production writes, whatever ``LOG_FORMAT`` the
    test run itself uses.
    """
    config = copy.deepcopy(settings.LOGGING)
    configurator = logging.config.DictConfigurator(config)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configurator.configure_formatter(config["formatters"]["json"]))
    handler.addFilter(configurator.configure_filter(config["filters"]["context"]))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
