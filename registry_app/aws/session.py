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

from registry_app.aws.errors import THROTTLING_CODES

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


def client_config(max_pool_connections: int | None = None) -> Config:
    return Config(
        retries={"mode": settings.AWS_RETRY_MODE, "total_max_attempts": settings.AWS_MAX_ATTEMPTS},
        connect_timeout=settings.AWS_CONNECT_TIMEOUT,
        read_timeout=settings.AWS_READ_TIMEOUT,
        max_pool_connections=max_pool_connections or max(10, settings.SYNC_THREADS * 2),
        user_agent_extra="sagemaker-governance-dashboard",
    )


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def _assumed_role_session(cfg: SourceConfig) -> boto3.Session:
    base = boto3.Session(region_name=cfg.region)
    sts = base.client("sts", config=client_config())
    session_name = (cfg.source_identity or "governance-dashboard")[:64]

    def refresh() -> dict[str, str]:
        params: dict[str, Any] = {
            "RoleArn": cfg.role_arn,
            "RoleSessionName": _safe_session_name(session_name),
            "DurationSeconds": 3600,
        }
        if cfg.external_id:
            params["ExternalId"] = cfg.external_id
        if cfg.source_identity:
            params["SourceIdentity"] = _safe_session_name(cfg.source_identity)
        creds = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    credentials: RefreshableCredentials = DeferredRefreshableCredentials(
        refresh_using=refresh, method="sts-assume-role"
    )
    botocore_session = BotocoreSession()
    botocore_session._credentials = credentials  # documented pattern for refreshable assumed roles
    botocore_session.set_config_variable("region", cfg.region)
    return boto3.Session(botocore_session=botocore_session, region_name=cfg.region)


def _safe_session_name(value: str) -> str:
    """RoleSessionName / SourceIdentity allow ``[\\w+=,.@-]``, 2-64 characters."""
    cleaned = "".join(ch if (ch.isalnum() or ch in "_+=,.@-") else "-" for ch in value)[:64]
    return cleaned if len(cleaned) >= 2 else f"{cleaned}--"[:2]


def session_for(cfg: SourceConfig) -> boto3.Session:
    key = (cfg.name, cfg.region, cfg.role_arn, cfg.external_id, cfg.source_identity)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            cached = _assumed_role_session(cfg) if cfg.role_arn else boto3.Session(region_name=cfg.region)
            _CACHE[key] = cached
        return cached


def make_client(cfg: SourceConfig, service: str, stats: CallStats | None = None) -> Any:
    """A client with retries and timeouts; counts HTTP attempts and throttles into ``stats``."""
    session = session_for(cfg)
    with _LOCK:  # boto3 sessions are not thread-safe; client creation is serialised
        client = session.client(service, region_name=cfg.region, config=client_config())
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
