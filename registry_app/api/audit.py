"""One audit entry per authenticated API call: who (the service account or the person), through
which token, what was asked, and what was answered.

Applied around every operation as a ninja "view" decorator, so it sees the final response, also
the 403/404/400 ones. Not audited: calls that failed authentication (no one to attribute them
to; they are logged as warnings) and calls refused by the rate limit (auditing them would turn a
runaway loop into a flood of audit entries, which is what the limit prevents).

Volume: a pipeline asking before every deploy adds one entry per call (about 3 queries under the
chain lock); at the default rate limit of 120 calls a minute per token that is well within what
the hash chain appends.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from registry_app.api.auth import Caller
from registry_app.audit.log import audit_append
from registry_app.models import AuditLogEntry

__all__ = ["ACTION", "audited", "note", "record"]

ACTION = "api.call"
MAX_VALUE = 200
MAX_PARAMS = 10


def note(request: HttpRequest, **fields: Any) -> None:
    """Add fields to this call's audit entry (e.g. the package answered, deployable or not)."""
    current = getattr(request, "_api_audit", {})
    current.update(fields)
    request._api_audit = current  # type: ignore[attr-defined]


def _query(request: HttpRequest) -> dict[str, str]:
    return {str(k)[:MAX_VALUE]: str(v)[:MAX_VALUE] for k, v in list(request.GET.items())[:MAX_PARAMS]}


def record(request: HttpRequest, caller: Caller, response: HttpResponseBase) -> None:
    extra = dict(getattr(request, "_api_audit", {}))
    package_id = extra.pop("package_id", None)
    token = caller.token
    path = request.path[:MAX_VALUE]
    after = {
        "method": request.method,
        "path": path,
        "query": _query(request),
        "status": response.status_code,
        "token": token.name if token is not None else None,
        "token_prefix": token.prefix if token is not None else None,
        **extra,
    }
    how = f"token {token.name}" if token is not None else "session"
    audit_append(
        ACTION,
        actor=caller.user,
        via=AuditLogEntry.Via.WEB,
        subject=("api_token", token.pk, str(token)) if token is not None else None,
        package=package_id,
        after=after,
        message=f"API {request.method} {path} → {response.status_code} ({how})",
        correlation_id=str(getattr(request, "request_id", "") or ""),
    )


def audited(run: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = run(request, *args, **kwargs)
        caller = getattr(request, "auth", None)
        if isinstance(caller, Caller) and response.status_code != 429:
            record(request, caller, response)
        return response

    return wrapper
