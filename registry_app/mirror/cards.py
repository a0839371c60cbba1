"""Turn SageMaker model card content (the JSON ``ModelCardContent``) into sections for display.

Pure: no ORM, no boto3, no I/O. Every label, value, item and table cell produced here is plain text, never
HTML; templates escape it. Matrix cells and curve points stay numbers (``None`` when not finite) so charts
can use them. Content is user-written and the model-package card schema is strict, but cards read from
elsewhere may not be, so unexpected shapes are stringified rather than rejected.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry_app.mirror.reports.values import clean_text, json_type_name

if TYPE_CHECKING:
    from registry_app.models import ModelPackage

MAX_CONTENT_CHARS = 100_000  # ModelCardContent limit in the SageMaker API.
RISK_RATINGS: tuple[str, ...] = ("High", "Medium", "Low", "Unknown")
SECTION_ORDER: tuple[tuple[str, str], ...] = (
    ("model_overview", "Model overview"),
    ("intended_uses", "Intended uses"),
    ("business_details", "Business details"),
    ("training_details", "Training details"),
    ("evaluation_details", "Evaluation"),
    ("additional_information", "Additional information"),
    ("model_package_details", "Model package details"),
)
LABEL_SEPARATOR = " › "

_MAX_DEPTH = 12  # Deeper than any schema path; anything below is shown as JSON text.
_MAX_INT_DIGITS = 400
_ACRONYMS = {"arn": "ARN", "url": "URL", "uri": "URI", "id": "ID"}
_RISK_BY_LOWER = {rating.lower(): rating for rating in RISK_RATINGS}


class CardContentError(ValueError):
    """Model card content that is not a JSON object."""


@dataclass
class CardField:
    label: str
    value: str | None
    items: list[str] | None = None
    table: list[tuple[str, str]] | None = None
    matrix: dict | None = None
    curve: dict | None = None


@dataclass
class CardSection:
    key: str
    title: str
    fields: list[CardField]


# --------------------------------------------------------------------------------------------- parsing


def _parse_int(literal: str) -> int | float:
    return int(literal) if len(literal) <= _MAX_INT_DIGITS else float(literal)


def parse_card_content(content: str | dict | None) -> dict | None:
    """Return card content as a dict: None/blank -> None, dict -> itself, JSON text -> parsed object.

    Raises CardContentError for text over the API limit, invalid JSON, or JSON that is not an object.
    """
    if content is None:
        return None
    if isinstance(content, dict):
        return content
    if isinstance(content, bytes | bytearray):
        try:
            content = bytes(content).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CardContentError(f"model card content is not valid UTF-8 (bad byte at offset {exc.start})") from None
    if not isinstance(content, str):
        raise CardContentError(f"model card content must be JSON text or an object, not {type(content).__name__}")
    text = content.removeprefix("\ufeff")
    if not text.strip():
        return None
    if len(text) > MAX_CONTENT_CHARS:
        raise CardContentError(
            f"model card content is {len(text):,} characters; the API limit is {MAX_CONTENT_CHARS:,}"
        )
    try:
        parsed = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise CardContentError(
            f"model card content is not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise CardContentError("model card content is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise CardContentError(f"model card content is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise CardContentError(f"model card content is {json_type_name(parsed)}, expected a JSON object")
    return parsed


def content_hash(content: dict | None) -> str:
    """sha256 hex of canonical JSON (sorted keys, compact, ASCII); "" for None. Equal content, equal hash."""
    if content is None:
        return ""
    try:
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    except TypeError:
        # Mixed key types cannot be sorted; round-trip once so every key is a string first.
        canonical = json.dumps(
            json.loads(json.dumps(content, default=str)), sort_keys=True, separators=(",", ":"), default=str
        )
    except (ValueError, RecursionError) as exc:
        raise CardContentError(f"model card content cannot be serialised: {exc}") from None
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


# --------------------------------------------------------------------------------------------- text


def humanise_key(key: Any) -> str:
    """``purpose_of_model`` -> ``Purpose of model``; ``training_arn`` -> ``Training ARN``."""
    text = clean_text(key) if isinstance(key, str) else _text(key)
    words = [word for word in re.split(r"[_\s]+", text.strip()) if word]
    if not words:
        return text
    words = [_ACRONYMS.get(word.lower(), word) for word in words]
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


def _number_text(value: int | float) -> str:
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # over Python's int-to-str digit limit
            return "(integer too large to display)"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _json_text(value: Any) -> str:
    try:
        return clean_text(json.dumps(value, ensure_ascii=False, default=str))
    except (TypeError, ValueError, RecursionError):
        return "(value cannot be displayed)"


def _text(value: Any) -> str:
    """Any JSON value as display text; never raises."""
    if value is None:
        return ""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int | float):
        return _number_text(value)
    return _json_text(value)


def _value(value: Any) -> str | None:
    return None if value is None else _text(value)


def _cell(value: Any) -> int | float | None:
    """A matrix cell or curve coordinate: a finite number, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    if not math.isfinite(number):
        return None
    return value if isinstance(value, int) else number


# --------------------------------------------------------------------------------------------- fields


def _label(parts: list[str]) -> str:
    return LABEL_SEPARATOR.join(parts)


def _is_name_value_table(items: list) -> bool:
    return bool(items) and all(
        isinstance(item, dict) and "name" in item and "value" in item and set(item) <= {"name", "value", "notes"}
        for item in items
    )


def _table_row(item: dict) -> tuple[str, str]:
    value = _text(item["value"])
    notes = item.get("notes")
    if isinstance(notes, str) and notes.strip():
        value = f"{value} ({clean_text(notes)})"
    return _text(item["name"]), value


def _list_fields(parts: list[str], values: list, depth: int) -> list[CardField]:
    label = _label(parts)
    if _is_name_value_table(values):
        return [CardField(label, None, table=[_table_row(item) for item in values])]
    if values and all(isinstance(item, dict) for item in values):
        fields: list[CardField] = []
        base, last = parts[:-1], parts[-1] if parts else "Item"
        for i, item in enumerate(values, start=1):
            fields.extend(_fields([*base, f"{last} {i}"], item, depth + 1))
        return fields
    return [CardField(label, None, items=[_text(item) for item in values])]


def _fields(parts: list[str], value: Any, depth: int) -> list[CardField]:
    """Flatten ``value`` into fields labelled ``Parent › child``."""
    label = _label(parts)
    if depth > _MAX_DEPTH:
        return [CardField(label, _json_text(value))]
    if isinstance(value, dict):
        if not value:
            return [CardField(label, None)]
        fields: list[CardField] = []
        for key, child in value.items():
            fields.extend(_fields([*parts, humanise_key(key)], child, depth + 1))
        return fields
    if isinstance(value, list):
        return _list_fields(parts, value, depth)
    return [CardField(label, _value(value))]


def _section_fields(title: str, value: Any) -> list[CardField]:
    if isinstance(value, dict):
        fields: list[CardField] = []
        for key, child in value.items():
            fields.extend(_fields([humanise_key(key)], child, 1))
        return fields
    return _fields([title], value, 1)


# --------------------------------------------------------------------------------------------- metrics


def _axis_names(raw: Any, size: int) -> list[str]:
    if isinstance(raw, list) and len(raw) == size:
        return [_text(item) for item in raw]
    return [str(i) for i in range(size)]


def _matrix(item: dict) -> dict | None:
    """``{"labels_x", "labels_y", "matrix"}``; per the SageMaker SDK, rows follow ``x_axis_name``."""
    rows = item.get("value")
    if not isinstance(rows, list) or not rows or not all(isinstance(row, list) for row in rows):
        return None
    width = max(len(row) for row in rows)
    matrix = [[_cell(row[j]) if j < len(row) else None for j in range(width)] for row in rows]
    return {
        "labels_x": _axis_names(item.get("x_axis_name"), len(rows)),
        "labels_y": _axis_names(item.get("y_axis_name"), width),
        "matrix": matrix,
    }


def _axis_title(raw: Any, default: str) -> str:
    return default if raw is None else _text(raw)


def _curve(item: dict) -> dict | None:
    """``{"x", "y", "x_label", "y_label"}`` from ``[[x, y], ...]``; pairs that are not two numbers are dropped."""
    pairs = item.get("value")
    if not isinstance(pairs, list):
        return None
    xs: list[int | float] = []
    ys: list[int | float] = []
    for pair in pairs:
        if isinstance(pair, list) and len(pair) == 2:
            x, y = _cell(pair[0]), _cell(pair[1])
            if x is not None and y is not None:
                xs.append(x)
                ys.append(y)
    if not xs:
        return None
    return {
        "x": xs,
        "y": ys,
        "x_label": _axis_title(item.get("x_axis_name"), "x"),
        "y_label": _axis_title(item.get("y_axis_name"), "y"),
    }


def _bar_table(item: dict) -> list[tuple[str, str]] | None:
    values = item.get("value")
    if not isinstance(values, list):
        return None
    labels = _axis_names(item.get("x_axis_name"), len(values))
    return [(label, _text(value)) for label, value in zip(labels, values, strict=True)]


def _metric_field(label: str, item: dict) -> CardField:
    metric_type = item.get("type")
    if metric_type == "matrix" and (matrix := _matrix(item)) is not None:
        return CardField(label, None, matrix=matrix)
    if metric_type == "linear_graph" and (curve := _curve(item)) is not None:
        return CardField(label, None, curve=curve)
    if metric_type == "bar_chart" and (table := _bar_table(item)) is not None:
        return CardField(label, None, table=table)
    return CardField(label, _value(item.get("value")))


def _metric_group_fields(groups: Any) -> list[CardField]:
    if not isinstance(groups, list):
        return [CardField("Metric groups", _value(groups))]
    fields: list[CardField] = []
    for i, group in enumerate(groups, start=1):
        if not isinstance(group, dict):
            fields.append(CardField(f"Metric group {i}", _value(group)))
            continue
        name = group.get("name")
        group_label = _text(name) if isinstance(name, str) and name.strip() else f"Metric group {i}"
        data = group.get("metric_data")
        if not isinstance(data, list):
            fields.append(CardField(group_label, _value(data)))
            continue
        for j, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                fields.append(CardField(_label([group_label, f"Metric {j}"]), _value(item)))
                continue
            metric_name = item.get("name")
            metric_label = _text(metric_name) if metric_name not in (None, "") else f"Metric {j}"
            label = _label([group_label, metric_label])
            fields.append(_metric_field(label, item))
            notes = item.get("notes")
            if isinstance(notes, str) and notes.strip():
                fields.append(CardField(_label([label, "Notes"]), clean_text(notes)))
    return fields


def _evaluation_sections(value: Any) -> list[CardSection]:
    evaluations = [value] if isinstance(value, dict) else value
    if not isinstance(evaluations, list):
        return [CardSection("evaluation_details", "Evaluation", _fields(["Evaluation details"], value, 1))]
    sections: list[CardSection] = []
    for i, evaluation in enumerate(evaluations):
        key = f"evaluation_details_{i}"
        if not isinstance(evaluation, dict):
            sections.append(CardSection(key, f"Evaluation: #{i + 1}", [CardField("Evaluation", _value(evaluation))]))
            continue
        name = evaluation.get("name")
        named = isinstance(name, str) and bool(name.strip())
        title = f"Evaluation: {clean_text(name)}" if named else f"Evaluation: #{i + 1}"
        fields: list[CardField] = []
        for field_key, child in evaluation.items():
            if field_key == "name" and named:
                continue  # already the title
            if field_key == "metric_groups":
                fields.extend(_metric_group_fields(child))
            else:
                fields.extend(_fields([humanise_key(field_key)], child, 1))
        sections.append(CardSection(key, title, fields))
    return sections


# --------------------------------------------------------------------------------------------- public


def card_sections(content: dict) -> list[CardSection]:
    """Sections in schema order, one per evaluation, then unknown top-level keys in document order.

    Section keys are the content keys, except evaluations: ``evaluation_details_0``, ``evaluation_details_1``...
    Sections whose value is null are left out.
    """
    if not isinstance(content, dict):
        return []
    sections: list[CardSection] = []
    known = {key for key, _ in SECTION_ORDER}
    for key, title in SECTION_ORDER:
        value = content.get(key)
        if value is None:
            continue
        if key == "evaluation_details":
            sections.extend(_evaluation_sections(value))
        else:
            sections.append(CardSection(key, title, _section_fields(title, value)))
    for key, value in content.items():
        if key in known or value is None:
            continue
        title = humanise_key(key)
        sections.append(CardSection(_text(key), title, _section_fields(title, value)))
    return sections


def risk_rating(content: dict | None) -> str | None:
    """``intended_uses.risk_rating`` as one of High/Medium/Low/Unknown (any case accepted), else None."""
    if not isinstance(content, dict):
        return None
    uses = content.get("intended_uses")
    raw = uses.get("risk_rating") if isinstance(uses, dict) else None
    if not isinstance(raw, str):
        return None
    return _RISK_BY_LOWER.get(raw.strip().lower())


def card_status_of(package: ModelPackage) -> str:
    """The linked standalone card's status, else the embedded card's.

    Reads the package's ``model_card``: callers select it with the package (an unselected one costs a query).
    """
    if package.model_card_id is not None and package.model_card is not None:
        return str(package.model_card.status)
    return str(package.embedded_card_status)


def card_content(package: ModelPackage) -> dict[str, Any]:
    """The model card's content as a dict: the linked standalone card's, else the embedded one ({} if none)."""
    content: Any = None
    if package.model_card_id is not None and package.model_card is not None:
        content = package.model_card.content
    if content is None:
        content = package.embedded_card_content
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            return {}
    return content if isinstance(content, dict) else {}
