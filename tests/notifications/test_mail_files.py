"""The .eml file backend: one RFC 5322 file per message, which a mail client (and the stdlib) parses."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from django.core.mail import EmailMultiAlternatives, get_connection

from registry_app.notifications.mail_files import EmailBackend


def _message(n: int) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=f"[Model governance] Review requested: fraud-detector v{n}",
        body=f"Plain text {n}: https://governance.example/groups/fraud-detector/{n}/",
        from_email="governance@acme.example",
        to=[f"reviewer{n}@acme.example"],
    )
    message.attach_alternative(f"<p>HTML {n} — ünïcødé</p>", "text/html")
    return message


def test_one_eml_file_per_message_even_when_sent_together(tmp_path: Path) -> None:
    backend = get_connection("registry_app.notifications.mail_files.EmailBackend", file_path=str(tmp_path))
    assert isinstance(backend, EmailBackend)
    assert backend.send_messages([_message(1), _message(2), _message(3)]) == 3
    files = sorted(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".eml"] * 3  # not Django's one .log per connection
    parsed = [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert sorted(m["To"] for m in parsed) == [f"reviewer{n}@acme.example" for n in (1, 2, 3)]
    for m in parsed:
        assert m["Subject"].startswith("[Model governance] Review requested: fraud-detector v")
        assert m["Message-ID"] and m["Date"] and m["From"] == "governance@acme.example"
        assert m.get_content_type() == "multipart/alternative"
        html = m.get_body(preferencelist=("html",))
        assert html is not None and "ünïcødé" in html.get_content()
        plain = m.get_body(preferencelist=("plain",))
        assert plain is not None and "https://governance.example/groups/fraud-detector/" in plain.get_content()


def test_a_message_without_recipients_writes_nothing(tmp_path: Path) -> None:
    backend = EmailBackend(file_path=str(tmp_path / "mail"))
    message = _message(1)
    message.to = []
    assert backend.send_messages([message]) == 0
    assert not (tmp_path / "mail").exists() or not list((tmp_path / "mail").iterdir())
    assert not list(tmp_path.glob("**/.*.part"))
