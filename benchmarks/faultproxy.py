"""A fault-injecting HTTP proxy in front of a moto server, for the fault soak.

Every request is forwarded to moto unchanged, except that, while ``enabled``, a JSON-protocol
request (one with an ``X-Amz-Target`` header: SageMaker, CloudTrail, ...) draws from a seeded random
generator and, with probability ``rate``, gets one of these faults instead:

* ``throttle``: ``400 ThrottlingException`` (not forwarded);
* ``5xx``: ``500 InternalFailure`` or ``503 ServiceUnavailable`` (not forwarded);
* ``timeout``: no answer until the client's read timeout has passed, then the connection closes.
  Half of them are forwarded to moto first (``timeout_after_forward``): the call took effect but
  its response was lost, which is what exercises idempotent retries (``ClientToken``).

It counts faults by kind and operation, forwarded requests and moto's answers by operation
(``X-Amz-Target``, else the query/form ``Action``, else the method), and keeps every forwarded
``UpdateModelPackage`` (package ARN, ClientToken, target status, moto's HTTP status, whether the
client got the answer), so a soak can check each decision reached the registry exactly once.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
FAULT_KINDS = ("throttle", "5xx", "timeout")


@dataclass
class ForwardedUpdate:
    arn: str
    client_token: str
    status: str
    http_status: int
    delivered: bool
    at: float


@dataclass
class FaultStats:
    faults: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, operation)
    forwarded: Counter[str] = field(default_factory=Counter)
    answered_ok: Counter[str] = field(default_factory=Counter)  # moto answered 2xx
    updates: list[ForwardedUpdate] = field(default_factory=list)

    def fault_totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (kind, _op), n in self.faults.items():
            totals[kind] += n
        return {kind: totals[kind] for kind in (*FAULT_KINDS, "timeout_after_forward")}

    def as_dict(self) -> dict[str, Any]:
        by_op: dict[str, dict[str, int]] = {}
        for (kind, op), n in sorted(self.faults.items()):
            by_op.setdefault(op, {})[kind] = n
        return {
            "faults": self.fault_totals(),
            "faults_injected": sum(n for (kind, _), n in self.faults.items() if kind in FAULT_KINDS),
            "faults_by_operation": by_op,
            "forwarded": dict(sorted(self.forwarded.items())),
            "answered_ok": dict(sorted(self.answered_ok.items())),
            "updates": [u.__dict__ for u in self.updates],
        }


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        upstream_port: int,
        *,
        seed: int = 1,
        rate: float = 0.2,
        weights: dict[str, float] | None = None,
        timeout_s: float = 2.5,
        port: int = 0,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.upstream_port = upstream_port
        self.rate = rate
        self.weights = weights or {"throttle": 0.5, "5xx": 0.35, "timeout": 0.15}
        self.timeout_s = timeout_s
        self.enabled = False
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stats = FaultStats()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def draw(self, operation: str, injectable: bool) -> str | None:
        """The fault for this request, if any (``timeout`` is split into before/after forwarding)."""
        with self.lock:
            if not (self.enabled and injectable) or self.rng.random() >= self.rate:
                return None
            kinds, weights = zip(*self.weights.items(), strict=True)
            kind = self.rng.choices(kinds, weights)[0]
            if kind == "timeout" and self.rng.random() < 0.5:
                self.stats.faults[("timeout_after_forward", operation)] += 1
                kind = "timeout_after_forward"
            self.stats.faults[("timeout" if kind == "timeout_after_forward" else kind, operation)] += 1
            return kind

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (a killed worker, a timed-out call) is expected here."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return self.stats.as_dict()


def operation_of(method: str, path: str, headers: Any, body: bytes) -> tuple[str, bool]:
    """(operation name, whether it is a JSON-protocol call faults may be injected into)."""
    target = headers.get("X-Amz-Target") or ""
    if target:
        return target.rsplit(".", 1)[-1], True
    query = parse_qs(urlsplit(path).query)
    if "Action" in query:
        return query["Action"][0], False
    if body and b"Action=" in body[:200]:
        form = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0], False
    return method, False


class _Handler(BaseHTTPRequestHandler):
    server: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._proxy()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _error(self, status: int, code: str, message: str) -> None:
        data = json.dumps({"__type": code, "message": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _hang(self) -> None:
        time.sleep(self.server.timeout_s)
        self.close_connection = True

    def _proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        operation, injectable = operation_of(self.command, self.path, self.headers, body)
        fault = self.server.draw(operation, injectable)
        if fault == "throttle":
            return self._error(400, "ThrottlingException", "Rate exceeded")
        if fault == "5xx":
            if self.server.rng.random() < 0.5:
                return self._error(500, "InternalFailure", "We encountered an internal error. Please try again.")
            return self._error(503, "ServiceUnavailable", "Service is unavailable. Please try again.")
        if fault == "timeout":
            return self._hang()

        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            status, reply_headers = response.status, response.getheaders()
        finally:
            upstream.close()
        delivered = fault != "timeout_after_forward"
        with self.server.lock:
            self.server.stats.forwarded[operation] += 1
            if 200 <= status < 300:
                self.server.stats.answered_ok[operation] += 1
            if operation == "UpdateModelPackage":
                params = json.loads(body or b"{}")
                self.server.stats.updates.append(
                    ForwardedUpdate(
                        arn=str(params.get("ModelPackageArn", "")),
                        client_token=str(params.get("ClientToken", "")),
                        status=str(params.get("ModelApprovalStatus", "")),
                        http_status=status,
                        delivered=delivered,
                        at=time.time(),
                    )
                )
        if not delivered:
            return self._hang()
        self.send_response(status)
        for key, value in reply_headers:
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
