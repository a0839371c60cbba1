"""An e-mail backend for the demo and for deployments without SMTP: one ``.eml`` file per message.

Django's file backend appends every message of a connection to one ``.log`` file with separators, which
no mail client opens. Here each message is written whole (``message().as_bytes()``: headers, both
alternatives, RFC 5322) to ``EMAIL_FILE_PATH/<UTC time>-<random>.eml``, first under a temporary name
and then renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone


class EmailBackend(BaseEmailBackend):
    def __init__(self, *args: Any, file_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        path = file_path or getattr(settings, "EMAIL_FILE_PATH", None)
        if not path:
            raise ImproperlyConfigured("EMAIL_FILE_PATH must name the directory the .eml files go to.")
        self.directory = Path(path)

    def open(self) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        return False

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            try:
                self._write(message.message().as_bytes(linesep="\r\n"))
            except OSError:
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent

    def _write(self, content: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{timezone.now():%Y%m%d-%H%M%S-%f}-{uuid.uuid4().hex[:8]}.eml"
        target = self.directory / name
        partial = self.directory / f".{name}.part"
        with open(partial, "wb") as fh:
            fh.write(content)
        os.replace(partial, target)
        return target
