"""Idempotent attribute patching on moto's classes and modules, reversible for tests.

Every patch goes through ``set_attr``: the first time an attribute is patched its original value is
remembered, so installing twice changes nothing and ``restore_all`` puts moto back exactly as it was.
Patches are applied to moto's *classes* (``SageMakerResponse``, ``ModelPackage``, ...), which is what
both the in-process ``mock_aws()`` decorator and moto's HTTP server dispatch through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from typing import Any

_MISSING = object()
_LOCK = threading.RLock()
# (owner, attribute name) -> the value moto had before we touched it (_MISSING when it had none)
_ORIGINALS: dict[tuple[int, str], tuple[Any, str, Any]] = {}
# mappings we added keys to: (mapping, key) -> previous value or _MISSING
_MAP_ORIGINALS: list[tuple[MutableMapping[str, Any], str, Any]] = []


def set_attr(owner: Any, name: str, value: Any) -> None:
    """Replace ``owner.name`` with ``value``, remembering moto's original the first time."""
    with _LOCK:
        key = (id(owner), name)
        if key not in _ORIGINALS:
            _ORIGINALS[key] = (owner, name, owner.__dict__.get(name, _MISSING))
        setattr(owner, name, value)


def original(owner: Any, name: str) -> Any:
    """moto's own value of ``owner.name`` (before any patch of ours)."""
    with _LOCK:
        saved = _ORIGINALS.get((id(owner), name))
    if saved is None or saved[2] is _MISSING:
        return getattr(owner, name)
    return saved[2]


def set_item(mapping: MutableMapping[str, Any], key: str, value: Any) -> None:
    """Add ``mapping[key] = value`` (e.g. a moto-api URL route), remembering what was there."""
    with _LOCK:
        if not any(m is mapping and k == key for m, k, _ in _MAP_ORIGINALS):
            _MAP_ORIGINALS.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value


def is_patched(owner: Any, name: str) -> bool:
    with _LOCK:
        return (id(owner), name) in _ORIGINALS


def restore_all() -> None:
    """Undo every patch (used by tests that compare with plain moto)."""
    with _LOCK:
        for owner, name, value in _ORIGINALS.values():
            if value is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, value)
        _ORIGINALS.clear()
        for mapping, key, value in reversed(_MAP_ORIGINALS):
            if value is _MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = value
        _MAP_ORIGINALS.clear()


def wraps_original(owner: Any, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: install ``fn`` as ``owner.name``; ``fn`` receives moto's original as first argument."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        moto_fn = original(owner, name)

        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            return fn(moto_fn, self, *args, **kwargs)

        patched.__name__ = name  # moto finds response actions by function name
        patched.__qualname__ = f"{getattr(owner, '__name__', 'owner')}.{name}"
        patched.__doc__ = fn.__doc__
        set_attr(owner, name, patched)
        return fn

    return decorate
