"""Parse SageMaker evaluation reports (the files ModelMetrics points at) into one neutral shape.

Pure: no ORM, no boto3, no I/O. The caller fetches the bytes; this module only reads them: the size and
encoding limits, the JSON, the dispatch to each recognised section, and the ``ContentDigest`` check.

Recognised sections (see docs/aws-formats.md section 5), one module each:

- Model Monitor / Pipelines model quality (``model_quality``): ``regression_metrics``,
  ``binary_classification_metrics``, ``multiclass_classification_metrics``.
- Clarify ``analysis.json``: ``pre_training_bias_metrics`` and ``post_training_bias_metrics``
  (``clarify_bias``), ``explanations`` (``clarify_explainability``).
- The model-card metric schema (``card_metrics``): ``{"metric_groups": [{"name", "metric_data": [...]}]}``.

Reports come from pipelines we do not control, so parsing is tolerant: a bad metric is skipped with a
warning, non-finite numbers become ``None``, and only a document with nothing recognisable is rejected.
Every string is returned as plain text; escaping is the template's job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any

from registry_app.mirror.reports.card_metrics import metric_groups_section
from registry_app.mirror.reports.clarify_bias import bias_section
from registry_app.mirror.reports.clarify_explainability import explanations_section
from registry_app.mirror.reports.model_quality import quality_section
from registry_app.mirror.reports.values import (
    KIND_BIAS,
    KIND_BINARY,
    KIND_EXPLAINABILITY,
    KIND_MODEL_CARD,
    KIND_MULTICLASS,
    KIND_PRIORITY,
    KIND_REGRESSION,
    KIND_UNKNOWN,
    MAX_INT_DIGITS,
    STAGE_POST_TRAINING,
    STAGE_PRE_TRAINING,
    Collector,
    ParsedReport,
    ReportParseError,
    clean_text,
    json_type_name,
    shown,
)

MAX_REPORT_BYTES = 16 * 1024 * 1024  # Model Monitor/Clarify files are kilobytes; refuse anything absurd.

# Each recognised key: the kind it gives the report, and its parser (one module per format).
_SECTIONS: dict[str, tuple[str, Callable[[Any, Collector], bool]]] = {
    "regression_metrics": (KIND_REGRESSION, quality_section("regression_metrics", KIND_REGRESSION)),
    "binary_classification_metrics": (KIND_BINARY, quality_section("binary_classification_metrics", KIND_BINARY)),
    "multiclass_classification_metrics": (
        KIND_MULTICLASS,
        quality_section("multiclass_classification_metrics", KIND_MULTICLASS),
    ),
    "pre_training_bias_metrics": (KIND_BIAS, bias_section("pre_training_bias_metrics", STAGE_PRE_TRAINING)),
    "post_training_bias_metrics": (KIND_BIAS, bias_section("post_training_bias_metrics", STAGE_POST_TRAINING)),
    "explanations": (KIND_EXPLAINABILITY, explanations_section),
    "metric_groups": (KIND_MODEL_CARD, metric_groups_section),
}


def _parse_sections(document: dict, out: Collector) -> bool:
    """Parse every recognised section of ``document``; True when at least one key was recognised."""
    recognised = False
    for key, value in document.items():
        if key not in _SECTIONS:
            continue
        recognised = True
        kind, parser = _SECTIONS[key]
        if parser(value, out):
            out.kinds.append(kind)
    return recognised


# --------------------------------------------------------------------------------------------- public API


def _parse_int(literal: str) -> int | float:
    # Python refuses int literals over 4,300 digits (and big ones are slow); such a number is "infinite" here.
    return int(literal) if len(literal) <= MAX_INT_DIGITS else float(literal)


def _load_json(body: bytes | str) -> Any:
    if isinstance(body, bytes | bytearray | memoryview):
        raw = bytes(body)
        if len(raw) > MAX_REPORT_BYTES:
            raise ReportParseError(f"report is {len(raw)} bytes, larger than the {MAX_REPORT_BYTES} byte limit")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ReportParseError(f"report is not valid UTF-8 (bad byte at offset {exc.start})") from None
    elif isinstance(body, str):
        text = body.removeprefix("\ufeff")
        if len(text) > MAX_REPORT_BYTES:
            raise ReportParseError(f"report is {len(text)} characters, larger than the {MAX_REPORT_BYTES} limit")
    else:
        raise ReportParseError(f"report must be bytes or text, not {type(body).__name__}")
    if not text.strip():
        raise ReportParseError("report is empty")
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise ReportParseError(f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ReportParseError("not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise ReportParseError(f"not valid JSON: {exc}") from None


def parse_report(body: bytes | str) -> ParsedReport:
    """Parse one evaluation report.

    Sections are looked for at the top level; when none is there, one level down (a wrapper object such as
    ``{"evaluation": {"regression_metrics": ...}}``). Raises ``ReportParseError`` only when the body is not a
    JSON object or holds no recognised section; everything else degrades to warnings.
    """
    document = _load_json(body)
    if not isinstance(document, dict):
        raise ReportParseError(f"top-level JSON is {json_type_name(document)}, expected an object")
    out = Collector()
    recognised = _parse_sections(document, out)
    if not recognised:
        for value in document.values():
            if isinstance(value, dict):
                recognised = _parse_sections(value, out) or recognised
    if not recognised:
        keys = [shown(clean_text(key)) for key in document]
        found = ", ".join(keys[:20]) + (f", … ({len(keys)} keys)" if len(keys) > 20 else "")
        raise ReportParseError(f"no recognised metrics section (found keys: {found or 'none'})")
    kind = next((kind for kind in KIND_PRIORITY if kind in out.kinds), KIND_UNKNOWN)
    return ParsedReport(
        kind=kind,
        metrics=out.metrics,
        curves=out.curves,
        confusion_matrix=out.confusion_matrix,
        warnings=out.finish(),
        document=document,
    )


_HEX = re.compile(r"[0-9a-f]+")
_DIGEST_ALGORITHMS = {"sha256": ("sha256", 64), "sha-256": ("sha256", 64), "md5": ("md5", 32)}


def verify_content_digest(body: bytes, declared: str) -> bool | None:
    """Check a ModelMetrics ``ContentDigest`` against the report bytes.

    Accepts ``sha256:<hex>`` (the API's form), bare 64-hex sha256, ``md5:<hex>`` and bare 32-hex md5, in any case.
    Returns None when the declared digest is in a form we cannot check.
    """
    if not isinstance(declared, str):
        return None
    text = declared.strip().lower()
    prefix, sep, hex_digest = text.partition(":")
    if sep:
        spec = _DIGEST_ALGORITHMS.get(prefix)
    else:
        hex_digest = text
        spec = {64: ("sha256", 64), 32: ("md5", 32)}.get(len(text))
    if spec is None or len(hex_digest) != spec[1] or not _HEX.fullmatch(hex_digest):
        return None
    actual = hashlib.new(spec[0], bytes(body), usedforsecurity=False).hexdigest()
    return hmac.compare_digest(actual, hex_digest)
