"""What the queue tabs share: a page of rows, the filters, and links to rows' pages.

Reads only (no query here).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform
from django.urls import reverse
from django.utils.http import RFC3986_SUBDELIMS

__all__ = ["LIST_DEFERRED", "QueueFilters", "QueuePage", "TagFilter", "page_url", "source_query"]

# A package's large JSON columns, which no queue list (decided, archive preview) shows.
LIST_DEFERRED = (
    "raw",
    "inference_specification",
    "model_metrics",
    "embedded_card_content",
    "metadata_properties",
    "customer_metadata",
    "last_modified_by",
)


@dataclass(frozen=True)
class QueuePage:
    items: list[Any]
    total: int | None  # None when not counted (a "load more" request)
    next_cursor: str  # "" on the last page


@dataclass(frozen=True)
class TagFilter:
    key: str
    value: str | None  # None: the group has the key, whatever its value

    @classmethod
    def parse(cls, text: str) -> TagFilter | None:
        """``RiskTier:High`` (key and exact value) or ``RiskTier`` (key present); blank means no filter."""
        text = (text or "").strip()
        if not text:
            return None
        key, sep, value = text.partition(":")
        key = key.strip()
        if not key:
            return None
        return cls(key=key, value=value.strip() if sep else None)

    def apply(self, queryset: QuerySet[Any], field_path: str) -> QuerySet[Any]:
        """Keep rows whose tags JSON object (``{key: value}``) matches, on SQLite and PostgreSQL alike.

        The key is a parameter, never part of a lookup path, so any tag key is safe.
        """
        queryset = queryset.filter(**{f"{field_path}__has_key": self.key})
        if self.value is None:
            return queryset
        return queryset.alias(_tag_value=KeyTransform(self.key, field_path)).filter(_tag_value=self.value)


@dataclass(frozen=True)
class QueueFilters:
    group: str = ""  # exact group name
    tag: TagFilter | None = None
    role: str = ""  # still missing approvals in this role
    sla: str = ""  # "" or one of SLA_STATES
    not_mine: bool = False  # leave out what I registered

    @property
    def active(self) -> bool:
        return bool(self.group or self.tag or self.role or self.sla or self.not_mine)


@lru_cache(maxsize=8)
def _url_pattern(name: str, kinds: tuple[bool, ...]) -> tuple[str, tuple[str, ...]]:
    """The URL reversed with a sentinel per argument (digits for integers), and those sentinels."""
    sentinels = tuple(str(987654320 + i) if is_int else f"ARG{i}SENTINEL" for i, is_int in enumerate(kinds))
    return reverse(name, args=list(sentinels)), sentinels


def page_url(name: str, *args: Any) -> str:
    """``reverse(name, args=args)`` for a page of rows: the pattern is reversed once per process and
    the arguments quoted as ``reverse`` quotes them (50 ``reverse`` calls were a fifth of the page)."""
    url, sentinels = _url_pattern(name, tuple(isinstance(a, int) for a in args))
    for sentinel, arg in zip(sentinels, args, strict=True):
        url = url.replace(sentinel, quote(str(arg), safe=RFC3986_SUBDELIMS + "~:@"), 1)
    return url


def source_query(source_name: str) -> str:
    """``?source=<name>``, quoted as Django's ``urlencode`` filter quotes it."""
    return f"?source={quote(source_name, safe='/')}"
