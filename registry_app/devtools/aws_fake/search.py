"""SageMaker ``Search`` over model packages and model package groups, as the API reference describes it.

moto 5.2.5's Search compares every filter with ``==`` (so ``GreaterThan`` on ``LastModifiedTime``
matches nothing), ignores ``SortBy``, ``SortOrder``, ``MaxResults`` and ``NextToken`` (everything in
one page, no ``TotalHits``), and skips ``SubExpressions`` / ``NestedFilters``. This replaces it for
``Resource=ModelPackage`` and ``Resource=ModelPackageGroup``; other resources still go to moto.

Property types come from the botocore shapes (``ModelPackage`` / ``ModelPackageGroup`` in
``SearchRecord``): timestamps and numbers take the range operators, text takes ``Contains`` / ``In``
(botocore ``Operator`` doc), and timestamp values must be ``YYYY-mm-ddTHH:MM:SS`` (``Filter.Value``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import json
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import get_service_model
from moto.sagemaker.exceptions import AWSValidationException
from moto.sagemaker.responses import SageMakerResponse

from registry_app.devtools.aws_fake._patching import wraps_original

# Search MaxResults is 1-100 (botocore shape MaxResults). The Search reference names no default;
# 10 is what the SageMaker List* operations document as theirs (see docs/aws-fake.md).
MAX_RESULTS = 100
DEFAULT_MAX_RESULTS = 10
DEFAULT_SORT_BY = "LastModifiedTime"  # SearchRequest.SortBy doc
DEFAULT_SORT_ORDER = "Descending"  # SearchRequest.SortOrder doc
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"  # Filter.Value doc: YYYY-mm-dd'T'HH:MM:SS
RANGE_OPERATORS = ("GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo")
TEXT_ONLY_OPERATORS = ("Contains", "In")
RESOURCES = {"ModelPackage": "model_packages", "ModelPackageGroup": "model_package_groups"}


def _invalid(message: str) -> AWSValidationException:
    return AWSValidationException(message)


# --------------------------------------------------------------------------------------------- properties


def property_type(resource: str, name: str) -> str:
    """The botocore type of a (dotted) property of ``resource``: timestamp, integer, string, ...

    Unknown top-level names raise ValidationException, as moto's own Search does.
    """
    shape: Any = get_service_model("sagemaker").shape_for(resource)
    parts = name.split(".")
    if parts[0] == "Tags" and len(parts) > 1:
        return "string"  # Tags.<key> filters on the tag's value
    for index, part in enumerate(parts):
        while shape.type_name == "list":
            shape = shape.member
        if shape.type_name == "map":
            shape = shape.value
            continue
        if shape.type_name != "structure" or part not in shape.members:
            if index == 0:
                raise _invalid(f"Unknown property name: {name}")
            return "string"
        shape = shape.members[part]
    while shape.type_name == "list":
        shape = shape.member
    return str(shape.type_name)


def values_at(record: dict[str, Any], name: str) -> list[Any]:
    """Every value at a dotted path (lists are walked, so any element may match); [] when absent."""
    parts = name.split(".")
    if parts[0] == "Tags" and len(parts) > 1:
        key = ".".join(parts[1:])
        return [tag.get("Value", "") for tag in record.get("Tags") or [] if tag.get("Key") == key]
    current: list[Any] = [record]
    for part in parts:
        found: list[Any] = []
        for item in current:
            items = item if isinstance(item, list) else [item]
            found.extend(i[part] for i in items if isinstance(i, dict) and i.get(part) is not None)
        current = found
    flat: list[Any] = []
    for item in current:
        flat.extend(item if isinstance(item, list) else [item])
    return flat


def _typed(value: str, kind: str, name: str) -> Any:
    if kind == "timestamp":
        try:
            return dt.datetime.strptime(value, TIMESTAMP_FORMAT)
        except (TypeError, ValueError):
            raise _invalid(
                f"Invalid value '{value}' for timestamp property {name}: expected format yyyy-MM-dd'T'HH:mm:ss"
            ) from None
    if kind in ("integer", "long", "float", "double"):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _invalid(f"Invalid value '{value}' for numeric property {name}") from None
    if kind == "boolean":
        return str(value).lower() == "true"
    return value


def _as_naive_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


# --------------------------------------------------------------------------------------------- filters


def _filter_matches(resource: str, record: dict[str, Any], flt: dict[str, Any]) -> bool:
    name = flt["Name"]
    operator = flt.get("Operator") or "Equals"  # Filter doc: a Value without an Operator means Equals
    kind = property_type(resource, name)
    found = [_as_naive_utc(v) for v in values_at(record, name)]
    if operator == "Exists":
        return bool(found)
    if operator == "NotExists":
        return not found
    raw = flt.get("Value")
    if raw is None:
        raise _invalid(f"Filter on {name} with operator {operator} needs a Value")
    if operator in RANGE_OPERATORS and kind == "string":
        raise _invalid(f"Operator {operator} is not supported for text property {name}")
    if operator in TEXT_ONLY_OPERATORS and kind != "string":
        raise _invalid(f"Operator {operator} is only supported for text properties, not {name}")
    if operator == "Contains":
        return any(raw in str(v) for v in found)
    if operator == "In":
        return any(str(v) in raw.split(",") for v in found)
    expected = _typed(raw, kind, name)
    if kind in ("integer", "long", "float", "double"):
        found = [float(v) for v in found]
    comparisons = {
        "Equals": lambda v: v == expected,
        "NotEquals": lambda v: v != expected,
        "GreaterThan": lambda v: v > expected,
        "GreaterThanOrEqualTo": lambda v: v >= expected,
        "LessThan": lambda v: v < expected,
        "LessThanOrEqualTo": lambda v: v <= expected,
    }
    if operator not in comparisons:
        raise _invalid(f"Unsupported operator {operator}")
    if operator == "NotEquals":
        return all(comparisons[operator](v) for v in found)
    return any(comparisons[operator](v) for v in found)


def _nest(path: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(path.split(".")):
        out = {part: out}
    return dict(out)


def expression_matches(resource: str, record: dict[str, Any], expression: dict[str, Any] | None) -> bool:
    """SearchExpression: Filters, NestedFilters and SubExpressions combined with And (default) / Or."""
    if not expression:
        return True
    results: list[bool] = [_filter_matches(resource, record, f) for f in expression.get("Filters") or []]
    for nested in expression.get("NestedFilters") or []:
        # NestedFilters doc: satisfied when a single object of the list satisfies all its filters.
        path = nested["NestedPropertyName"]
        items = values_at(record, path)
        results.append(
            any(all(_filter_matches(resource, _nest(path, item), f) for f in nested["Filters"]) for item in items)
        )
    results.extend(expression_matches(resource, record, sub) for sub in expression.get("SubExpressions") or [])
    return any(results) if expression.get("Operator") == "Or" else all(results)


def _count_contains(expression: dict[str, Any] | None) -> int:
    if not expression:
        return 0
    filters = list(expression.get("Filters") or [])
    for nested in expression.get("NestedFilters") or []:
        filters.extend(nested.get("Filters") or [])
    own = sum(1 for f in filters if f.get("Operator") == "Contains")
    return own + sum(_count_contains(sub) for sub in expression.get("SubExpressions") or [])


# --------------------------------------------------------------------------------------------- order, pages


def _sort_key(record: dict[str, Any], sort_by: str, arn_member: str) -> tuple[bool, Any, str]:
    found = values_at(record, sort_by)
    return (bool(found), _as_naive_utc(found[0]) if found else None, str(record.get(arn_member, "")))


def _compare(ascending: bool, a: tuple[bool, Any, str], b: tuple[bool, Any, str]) -> int:
    if a[0] != b[0]:
        return -1 if a[0] else 1  # records without the sort property come last
    if a[0] and a[1] != b[1]:
        smaller = a[1] < b[1]
        return (-1 if smaller else 1) * (1 if ascending else -1)
    return (a[2] > b[2]) - (a[2] < b[2])  # ties: by ARN, for a stable order across pages


def _encode_value(value: Any) -> Any:
    return {"ts": value.isoformat()} if isinstance(value, dt.datetime) else value


def _decode_value(value: Any) -> Any:
    return dt.datetime.fromisoformat(value["ts"]) if isinstance(value, dict) else value


def _query_digest(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_token(key: tuple[bool, Any, str], digest: str) -> str:
    payload = {"k": [key[0], _encode_value(key[1]), key[2]], "q": digest}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_token(token: str, digest: str) -> tuple[bool, Any, str]:
    """The sort key of the last record of the previous page (a search-after cursor, so a record that
    changes between pages is neither skipped nor repeated unless its sort value moved)."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        present, value, arn = payload["k"]
        if payload["q"] != digest:
            raise ValueError("token of another query")
        return bool(present), _decode_value(value), str(arn)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _invalid("Invalid pagination token (NextToken) for this request") from None


def search(response: SageMakerResponse, resource: str) -> dict[str, Any]:
    param = response._get_param
    expression = param("SearchExpression")
    sort_by = param("SortBy") or DEFAULT_SORT_BY
    if not param("SortBy") and resource == "ModelPackageGroup":
        sort_by = "CreationTime"  # groups have no LastModifiedTime; the default falls back to creation
    sort_order = param("SortOrder") or DEFAULT_SORT_ORDER
    max_results = param("MaxResults")
    if max_results is None:
        max_results = DEFAULT_MAX_RESULTS
    if not 1 <= int(max_results) <= MAX_RESULTS:
        raise _invalid(
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value {'less' if int(max_results) > MAX_RESULTS else 'greater'} than or equal to "
            f"{MAX_RESULTS if int(max_results) > MAX_RESULTS else 1}"
        )
    if _count_contains(expression) > 1:
        raise _invalid("'CONTAINS' operator usage limit of 1 exceeded.")
    property_type(resource, sort_by)  # an unknown SortBy property is refused like an unknown filter
    arn_member = f"{resource}Arn"
    objects = list(getattr(response.sagemaker_backend, RESOURCES[resource]).values())
    records = []
    for obj in objects:
        record = obj.gen_response_object()
        if resource == "ModelPackage":
            record["Tags"] = list(obj.tags or [])  # the Search ModelPackage record carries Tags
        records.append(record)
    matched = [r for r in records if expression_matches(resource, r, expression)]
    compare = functools.partial(_compare, sort_order == "Ascending")
    by_key = functools.cmp_to_key(lambda a, b: compare(a[0], b[0]))
    keyed = sorted(((_sort_key(r, sort_by, arn_member), r) for r in matched), key=by_key)
    digest = _query_digest({"r": resource, "e": expression, "s": sort_by, "o": sort_order})
    token = param("NextToken")
    if token:
        cursor = decode_token(token, digest)
        keyed = [(k, r) for k, r in keyed if compare(k, cursor) > 0]
    page = keyed[: int(max_results)]
    result: dict[str, Any] = {
        "Results": [{resource: record} for _key, record in page],
        "TotalHits": {"Value": len(matched), "Relation": "EqualTo"},
    }
    if len(keyed) > len(page):
        result["NextToken"] = encode_token(page[-1][0], digest)
    return result


def install() -> None:
    @wraps_original(SageMakerResponse, "search")
    def search_action(moto_search: Any, self: SageMakerResponse) -> ActionResult:
        """Search: the fake's implementation for model packages and groups, moto's for the rest."""
        resource = self._get_param("Resource")
        if resource not in RESOURCES:
            return moto_search(self)  # type: ignore[no-any-return]
        return ActionResult(search(self, resource))
