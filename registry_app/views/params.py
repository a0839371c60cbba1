"""Strict query-string parameters: a value, or ``BadParameter`` naming the field and what it accepts.

``registry_app.views.errors.InputErrorMiddleware`` answers ``BadParameter`` with a 400 page (a JSON
error when the request asked for JSON), so a view raises it and never renders an error itself. A
parameter a page does not know is ignored; a known one that is malformed is refused, never guessed
at: the person (or the old bookmark) learns what to fix, and nothing odd reaches a query (a NUL
character alone is a 500 on PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django import forms
from django.http import HttpRequest

__all__ = ["SOURCE_FORM", "BadParameter", "cleaned", "source_name"]

SOURCE_FORM = "a registry source name: 1 to 64 letters, digits, '-' or '_'"
_SOURCE = re.compile(r"[-a-zA-Z0-9_]{1,64}")  # RegistrySource.name is a 64-character ASCII SlugField


class BadParameter(Exception):
    """A query-string (or form) value the page cannot use; ``errors`` maps each field to its messages."""

    def __init__(self, errors: Mapping[str, Iterable[str]], *, title: str = "") -> None:
        self.errors = {field: [str(message) for message in messages] for field, messages in errors.items()}
        self.title = title
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in self.errors.items()))

    @classmethod
    def field(cls, name: str, message: str, *, title: str = "") -> BadParameter:
        return cls({name: [message]}, title=title)

    @classmethod
    def from_form(cls, form: forms.Form, *, title: str = "") -> BadParameter:
        """The form's errors; a form-wide error (``__all__``) is about the request as a whole."""
        errors: dict[str, Any] = {}
        for name, messages in form.errors.items():
            errors["request" if name == forms.forms.NON_FIELD_ERRORS else name] = messages
        return cls(errors, title=title)


def cleaned(form: forms.Form, *, title: str = "") -> dict[str, Any]:
    """``form.cleaned_data``, or ``BadParameter`` with every field's error."""
    if not form.is_valid():
        raise BadParameter.from_form(form, title=title)
    return form.cleaned_data


def source_name(request: HttpRequest, *, title: str = "") -> str | None:
    """``?source=``: which registry source's group or package a page means (absent or empty: any)."""
    value = request.GET.get("source", "")
    if not value:
        return None
    if not _SOURCE.fullmatch(value):
        raise BadParameter.field("source", f"Use {SOURCE_FORM}.", title=title)
    return value
