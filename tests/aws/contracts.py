"""Contract-test helpers: botocore's Stubber on the adapter's own clients, plus the checks it skips.

``Stubber`` validates every stubbed request against the service model (names, types, required
members) and every stubbed response against the output shape. botocore's validator does not check
string ``pattern`` or ``max`` (STS's ``[\\w+=,.@-]*`` for a session name, 64 characters), so
``Stubs`` checks those too, in ASCII as AWS does. ``contract(service, *operations)`` marks a test
as the contract test of those operations; tests/aws/test_operations.py requires one for every
operation the adapter calls, and ``Stubs.done()`` proves the marked operations were exercised.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from botocore.stub import ANY, Stubber

REGION = "eu-west-1"
ACCOUNT = "111122223333"
SHARED_ACCOUNT = "444455556666"

F = Callable[..., Any]


def contract(service: str, *operations: str) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        fn.__contract__ = tuple(getattr(fn, "__contract__", ())) + tuple((service, op) for op in operations)  # type: ignore[attr-defined]
        return fn

    return mark


def model_violations(shape: Any, value: Any, path: str = "") -> list[str]:
    """What botocore's ParamValidator lets through: string patterns and maximum lengths."""
    if value is ANY or shape is None:
        return []
    out: list[str] = []
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                out += model_violations(shape.members[name], member, f"{path}.{name}")
    elif kind == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            out += model_violations(shape.member, item, f"{path}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            out += model_violations(shape.key, key, f"{path}<key>")
            out += model_violations(shape.value, item, f"{path}[{key}]")
    elif kind == "string" and isinstance(value, str):
        meta = shape.metadata
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"{path}: {len(value)} characters > max {meta['max']}")
        if "min" in meta and len(value) < meta["min"]:
            out.append(f"{path}: {len(value)} characters < min {meta['min']}")
        pattern = meta.get("pattern")
        if pattern:
            try:
                compiled = re.compile(pattern, re.ASCII | re.DOTALL)
            except re.error:  # a Java-only construct: botocore cannot check it either
                compiled = None
            if compiled is not None and compiled.fullmatch(value) is None:
                out.append(f"{path}: {value!r} does not match {pattern!r}")
    elif kind in ("integer", "long") and isinstance(value, int):
        meta = shape.metadata
        if "max" in meta and value > meta["max"] or "min" in meta and value < meta["min"]:
            out.append(f"{path}: {value} outside {meta.get('min')}..{meta.get('max')}")
    return out


class Stubs:
    """Stubbers on the botocore clients of one ``RegistryClient`` (or any client factory)."""

    def __init__(self, client_of: Callable[[str], Any]) -> None:
        self._client_of = client_of
        self._stubbers: dict[str, Stubber] = {}
        self.operations: set[tuple[str, str]] = set()

    def stubber(self, service: str) -> Stubber:
        if service not in self._stubbers:
            stubber = Stubber(self._client_of(service))
            stubber.activate()
            self._stubbers[service] = stubber
        return self._stubbers[service]

    def _method(self, service: str, operation: str) -> str:
        client = self.stubber(service).client
        reverse = {api: method for method, api in client.meta.method_to_api_mapping.items()}
        return reverse[operation]

    def _check(self, service: str, operation: str, expected: dict[str, Any] | None) -> None:
        model = self.stubber(service).client.meta.service_model.operation_model(operation)
        problems = model_violations(model.input_shape, expected or {})
        assert not problems, f"{operation} request breaks the {service} model: {problems}"
        self.operations.add((service, operation))

    def ok(self, service: str, operation: str, response: dict[str, Any], expected: dict[str, Any] | None) -> None:
        self._check(service, operation, expected)
        self.stubber(service).add_response(self._method(service, operation), response, expected)

    def error(
        self,
        service: str,
        operation: str,
        code: str,
        message: str,
        *,
        status: int = 400,
        expected: dict[str, Any] | None = None,
        error_meta: dict[str, Any] | None = None,
    ) -> None:
        self._check(service, operation, expected)
        self.stubber(service).add_client_error(
            self._method(service, operation),
            service_error_code=code,
            service_message=message,
            http_status_code=status,
            service_error_meta=error_meta,
            expected_params=expected,
        )

    def done(self, declared: tuple[tuple[str, str], ...] = ()) -> None:
        for stubber in self._stubbers.values():
            stubber.assert_no_pending_responses()
            stubber.deactivate()
        missing = set(declared) - self.operations
        assert not missing, f"declared as contract tests but never stubbed: {sorted(missing)}"


def arn(kind: str, name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:sagemaker:{REGION}:{account}:{kind}/{name}"
