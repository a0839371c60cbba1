"""Names STS accepts for ``RoleSessionName`` and ``SourceIdentity`` (pure: no boto3, no Django).

STS validates both against ``[\\w+=,.@-]*`` in ASCII (letters, digits, ``_ + = , . @ -``), 2-64
characters (botocore's ``roleSessionNameType`` / ``sourceIdentityType``; IAM User Guide, "Monitor
and control actions taken with assumed roles"). A dashboard username such as ``josé.müller`` or
``李小龙`` is rejected as it stands, so every push by such a person would fail. ``fold_identity``
maps any name into that alphabet deterministically, keeping it recognisable in CloudTrail
(accents dropped, not the letter: ``jose.muller``) and unique (a short hash of the original is
appended whenever anything was changed or cut), so two people never share a source identity.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MIN_LENGTH = 2
MAX_LENGTH = 64
HASH_LENGTH = 8
ALLOWED_RE = re.compile(r"[A-Za-z0-9_+=,.@-]*")
_REPLACE_RE = re.compile(r"[^A-Za-z0-9_+=,.@-]+")


def is_valid_identity(value: str) -> bool:
    """What STS accepts for RoleSessionName / SourceIdentity."""
    return MIN_LENGTH <= len(value) <= MAX_LENGTH and ALLOWED_RE.fullmatch(value) is not None


def fold_identity(value: str, *, fallback: str = "governance-dashboard") -> str:
    """A valid RoleSessionName / SourceIdentity for ``value``; ``value`` itself when already valid.

    Compatibility decomposition (NFKD) strips accents and splits ligatures (``ﬁ`` -> ``fi``);
    every remaining run of characters outside the alphabet becomes one ``-``. When that changed
    anything, or the result is too short or too long, ``-`` and the first 8 hex digits of the
    SHA-256 of the original (UTF-8) are appended, within 64 characters. An empty value gives
    ``fallback``.
    """
    text = value or ""
    if not text:
        return fallback
    if is_valid_identity(text):
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = _REPLACE_RE.sub("-", ascii_text).strip("-")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]
    base = folded[: MAX_LENGTH - HASH_LENGTH - 1].rstrip("-")
    return f"{base}-{digest}" if base else digest
