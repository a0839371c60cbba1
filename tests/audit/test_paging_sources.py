"""Hand-made cursors are refused unless they name a source a list pages (issue 14)."""

from __future__ import annotations

from registry_app.audit.paging import CURSOR_SOURCES
from registry_app.audit.timeline import SOURCES


def test_cursor_sources_are_the_paged_sources() -> None:
    assert set(SOURCES) | {"outside"} == CURSOR_SOURCES
