"""No path renders registry text as HTML without escaping it.

Today no registry-supplied field is rendered as HTML: model-card text, descriptions, metadata and
report content all go through Django's autoescaping (``linebreaksbr`` escapes first), and the
template tags build markup only with ``format_html``. This test keeps it that way: a template that
switches escaping off (outside plain-text emails) or a module that marks text safe fails here, and
must instead sanitise with an allow-list (nh3) and be added to the fuzz test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
HTML_TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
PYTHON = sorted(p for p in (ROOT / "registry_app").rglob("*.py") if "migrations" not in p.parts)

_UNESCAPED_TEMPLATE = re.compile(r"\|\s*safe(seq)?\b|{%\s*autoescape\s+off\s*%}")
_UNESCAPED_PYTHON = re.compile(r"\bmark_safe\s*\(|\bSafeString\s*\(|\bSafeText\s*\(|\.__html__\s*=")


def test_there_are_templates_and_modules_to_check() -> None:
    assert len(HTML_TEMPLATES) > 30 and len(PYTHON) > 30


@pytest.mark.parametrize("path", HTML_TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_html_templates_keep_autoescaping_on(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not _UNESCAPED_TEMPLATE.search(text), f"{path}: renders text unescaped; sanitise it with nh3 instead"


def test_python_never_marks_text_safe() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in PYTHON
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _UNESCAPED_PYTHON.search(line)
    ]
    assert not offenders, "\n".join(offenders)


def test_the_patterns_catch_what_they_guard_against() -> None:
    assert _UNESCAPED_TEMPLATE.search("{{ card.text|safe }}")
    assert _UNESCAPED_TEMPLATE.search("{% autoescape off %}{{ x }}{% endautoescape %}")
    assert _UNESCAPED_PYTHON.search("return mark_safe(markdown(text))")
    assert not _UNESCAPED_TEMPLATE.search("{{ card.text|linebreaksbr }}")
