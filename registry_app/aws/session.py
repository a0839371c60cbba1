"""Per-source boto3 sessions: the standard credential chain, optional AssumeRole, retries.

Only ``registry_app/aws/`` imports boto3. Endpoints and credentials come from boto3's own
chain (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, instance roles, ...): nothing is hard-coded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials, RefreshableCredentials
from botocore.session import Session as BotocoreSession
from django.conf import settings

from registry_app.aws.errors import (
    THROTTLING_CODES,
    AccessDeniedError,
    AwsError,
    RoleAssumptionError,
    translate,
)
from registry_app.aws.identity import fold_identity

_CACHE: dict[tuple[str, str, str, str, str], boto3.Session] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class SourceConfig:
    """What the adapter needs to know about a registry source (no Django model in here)."""

    name: str
    region: str
    role_arn: str = ""
    external_id: str = ""
    # Set for pushes made on behalf of a person: recorded by CloudTrail as sourceIdentity.
    source_identity: str = ""

    @classmethod
    def from_source(cls, source: Any, *, source_identity: str = "") -> SourceConfig:
        return cls(
            name=source.name,
            region=source.region,
            role_arn=source.role_arn or "",
            external_id=source.external_id or "",
            source_identity=source_identity,
        )


@dataclass
class CallStats:
    """Thread-safe counters of API calls (by operation), HTTP attempts, throttles and time in AWS."""

    calls: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    throttles: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, operation: str, elapsed: float) -> None:
        with self._lock:
            self.calls[operation] += 1
            self.seconds += elapsed

    def record_attempt(self, operation: str) -> None:
        with self._lock:
            self.attempts[operation] += 1

    def record_throttle(self, operation: str) -> None:
        with self._lock:
            self.throttles[operation] += 1

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.calls.items()))

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def client_config(max_pool_connections: int | None = None, *, max_attempts: int | None = None) -> Config:
    """Timeouts and retries; ``max_attempts`` lowers the total for interactive checks."""
    return Config(
        retries={"mode": settings.AWS_RETRY_MODE, "total_max_attempts": max_attempts or settings.AWS_MAX_ATTEMPTS},
        connect_timeout=settings.AWS_CONNECT_TIMEOUT,
        read_timeout=settings.AWS_READ_TIMEOUT,
        max_pool_connections=max_pool_connections or max(10, settings.SYNC_THREADS * 2),
        user_agent_extra="sagemaker-governance-dashboard",
    )


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def _sts_client(cfg: SourceConfig) -> Any:
    """STS with the worker's own credentials (the standard chain), for AssumeRole."""
    return boto3.Session(region_name=cfg.region).client("sts", config=client_config())


def assume_role_params(cfg: SourceConfig) -> dict[str, Any]:
    """AssumeRole parameters; names folded into what STS accepts (``identity.fold_identity``)."""
    params: dict[str, Any] = {
        "RoleArn": cfg.role_arn,
        # The session name shows in the assumed-role ARN; the person (if any) is recognisable there too.
        "RoleSessionName": fold_identity(cfg.source_identity),
        "DurationSeconds": 3600,
    }
    if cfg.external_id:
        params["ExternalId"] = cfg.external_id
    if cfg.source_identity:
        params["SourceIdentity"] = fold_identity(cfg.source_identity)
    return params


def assume_role_credentials(sts: Any, cfg: SourceConfig) -> dict[str, str]:
    """One AssumeRole; the credentials in the form botocore's refreshable credentials take.

    Failures become ours here, named for what they are: retrying a denied role helps nobody, and a
    denied role must not look like a denied SageMaker call to the code above (see ``role_error``).
    """
    try:
        creds = sts.assume_role(**assume_role_params(cfg))["Credentials"]
    except Exception as exc:  # noqa: BLE001 - translated into our own hierarchy
        error = translate(exc, "AssumeRole")
        caller = _caller_arn(sts) if cfg.source_identity and isinstance(error, AccessDeniedError) else ""
        raise role_error(error, cfg, caller_arn=caller) from exc
    return {
        "access_key": creds["AccessKeyId"],
        "secret_key": creds["SecretAccessKey"],
        "token": creds["SessionToken"],
        "expiry_time": creds["Expiration"].isoformat(),
    }


def _caller_arn(sts: Any) -> str:
    """The worker's own identity, to tell a chained role session from a user (best effort)."""
    try:
        return str(sts.get_caller_identity().get("Arn") or "")
    except Exception:  # noqa: BLE001 - only improves the message
        return ""


def role_error(exc: Exception, cfg: SourceConfig, *, caller_arn: str = "") -> AwsError:
    """Translate an AssumeRole failure, recognising the two ways a SourceIdentity breaks it.

    * The role's trust policy (or, across accounts, the worker's own policy) does not allow
      ``sts:SetSourceIdentity``: STS answers ``AccessDenied ... is not authorized to perform:
      sts:SetSourceIdentity on resource: <role>``. Every push fails until the policy is fixed.
    * The worker's own credentials are a role session that already carries a source identity
      (role chaining): STS never changes it, so pushes on behalf of anyone else are refused.
    Throttling and network errors stay retryable; the rest is a final ``RoleAssumptionError``.
    """
    error = translate(exc, "AssumeRole")
    if error.retryable or isinstance(error, RoleAssumptionError):
        return error
    text = str(error)
    lowered = text.lower()
    role = cfg.role_arn
    if cfg.source_identity and "sourceidentity" in lowered.replace(" ", "") and "setsourceidentity" not in lowered:
        return RoleAssumptionError(
            f"AssumeRole into {role} with SourceIdentity refused: the worker's own session already carries "
            f"a source identity, which role chaining never changes ({text}).",
            kind="role-chain",
            fix="run the worker with credentials that carry no source identity (an instance or task role, "
            "or an IAM user), not with a role session assumed with --source-identity.",
            code=error.code,
        )
    if "setsourceidentity" in lowered or (cfg.source_identity and isinstance(error, AccessDeniedError)):
        fix = (
            f'allow "sts:AssumeRole" and "sts:SetSourceIdentity" in the trust policy of {role} '
            "(docs/iam/trust-policy.json) and, when the worker is in another account, in the worker's own "
            "policy (docs/iam/dashboard-identity-policy.json)."
        )
        if ":assumed-role/" in caller_arn:
            fix += (
                f" The worker runs as the role session {caller_arn}: if that session was assumed with a "
                "source identity, STS refuses any other one (role chaining); then run the worker with "
                "credentials that carry none."
            )
        return RoleAssumptionError(
            f"AssumeRole into {role} with SourceIdentity denied ({text}).",
            kind="trust-policy",
            fix=fix,
            code=error.code,
        )
    if isinstance(error, AccessDeniedError):
        return RoleAssumptionError(
            f"AssumeRole into {role} denied ({text}).",
            kind="denied",
            fix=f"the trust policy of {role} must name the worker's principal and, when the source has an "
            "external id, require exactly it (docs/iam/trust-policy.json); the worker's own policy must allow "
            "sts:AssumeRole on the role.",
            code=error.code,
        )
    return error


def _assumed_role_session(cfg: SourceConfig) -> boto3.Session:
    sts = _sts_client(cfg)
    credentials: RefreshableCredentials = DeferredRefreshableCredentials(
        refresh_using=lambda: assume_role_credentials(sts, cfg), method="sts-assume-role"
    )
    botocore_session = BotocoreSession()
    botocore_session._credentials = credentials  # documented pattern for refreshable assumed roles
    botocore_session.set_config_variable("region", cfg.region)
    return boto3.Session(botocore_session=botocore_session, region_name=cfg.region)


def session_for(cfg: SourceConfig) -> boto3.Session:
    key = (cfg.name, cfg.region, cfg.role_arn, cfg.external_id, cfg.source_identity)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            cached = _assumed_role_session(cfg) if cfg.role_arn else boto3.Session(region_name=cfg.region)
            _CACHE[key] = cached
        return cached


def make_client(
    cfg: SourceConfig, service: str, stats: CallStats | None = None, *, max_attempts: int | None = None
) -> Any:
    """A client with retries and timeouts; counts HTTP attempts and throttles into ``stats``."""
    session = session_for(cfg)
    with _LOCK:  # boto3 sessions are not thread-safe; client creation is serialised
        client = session.client(service, region_name=cfg.region, config=client_config(max_attempts=max_attempts))
    if stats is not None:

        def on_send(event_name: str = "", **_: Any) -> None:
            stats.record_attempt(event_name.rsplit(".", 1)[-1])

        def on_retry(event_name: str = "", response: Any = None, **_: Any) -> None:
            parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
            code = (parsed or {}).get("Error", {}).get("Code", "")
            if code in THROTTLING_CODES:
                stats.record_throttle(event_name.rsplit(".", 1)[-1])

        client.meta.events.register("before-send", on_send)
        client.meta.events.register("needs-retry", on_retry)
    return client


def timed(stats: CallStats, operation: str, fn: Any, /, **kwargs: Any) -> Any:
    start = time.perf_counter()
    try:
        return fn(**kwargs)
    finally:
        stats.record(operation, time.perf_counter() - start)
