"""Loopback receivers for notification tests: an SMTP server (aiosmtpd) and an HTTP server that records
webhook POSTs and checks generic webhooks' HMAC signatures the way a receiver should."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpCollector:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook name)
        content = envelope.original_content or envelope.content
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(content)))
        return "250 Message accepted for delivery"

    def notification_ids(self) -> list[int]:
        """Every outbox row id told, once per message that told it (duplicates show as repeats)."""
        ids: list[int] = []
        for _, _, message in list(self.messages):
            header = message.get("X-Governance-Notification") or ""
            ids += [int(part) for part in header.split(",") if part.strip()]
        return ids


@contextmanager
def smtp_server() -> Iterator[tuple[SmtpCollector, int]]:
    handler = SmtpCollector()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def use_smtp(settings: Any, port: int) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records POSTs; ``verify(body, headers) -> bool`` checks signatures (for paths under ``/signed``);
    ``answers`` (path -> list of status codes) makes the next requests fail with those codes."""

    port: int
    verify: Callable[[bytes, dict[str, str]], bool] | None = None
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]


@contextmanager
def http_receiver(verify: Callable[[bytes, dict[str, str]], bool] | None = None) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(port=free_port(), verify=verify)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server hook name)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k: v for k, v in self.headers.items()}
            signed = self.path.startswith("/signed")
            ok = receiver.verify(body, headers) if (signed and receiver.verify) else None
            with receiver.lock:
                queued = receiver.answers.get(self.path) or []
                status = queued.pop(0) if queued else (401 if ok is False else 200)
                receiver.received.append(Received(self.path, headers, body, ok))
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"no")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
