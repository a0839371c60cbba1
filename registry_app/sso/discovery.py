"""The OpenID provider's endpoints: explicit settings, else discovery from the issuer.

``OIDC_OP_ISSUER`` names the provider; on first use (the first "Sign in with ..." click or
callback in a process) ``{issuer}/.well-known/openid-configuration`` is fetched and kept for
``OIDC_DISCOVERY_CACHE_SECONDS``. Any of ``OIDC_OP_AUTHORIZATION_ENDPOINT``,
``OIDC_OP_TOKEN_ENDPOINT``, ``OIDC_OP_USER_ENDPOINT`` and ``OIDC_OP_JWKS_ENDPOINT`` set explicitly
wins over the discovered value; with all four set, nothing is fetched. The discovered ``issuer``
must equal the configured one (OpenID Connect Discovery 1.0, section 4.3).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings

__all__ = ["DiscoveryError", "ProviderEndpoints", "clear_discovery_cache", "provider_endpoints"]

WELL_KNOWN = "/.well-known/openid-configuration"
_FIELDS = {
    "authorization_endpoint": "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "token_endpoint": "OIDC_OP_TOKEN_ENDPOINT",
    "userinfo_endpoint": "OIDC_OP_USER_ENDPOINT",
    "jwks_uri": "OIDC_OP_JWKS_ENDPOINT",
}


class DiscoveryError(Exception):
    """The provider's discovery document could not be fetched or does not fit the configuration."""


@dataclass(frozen=True)
class ProviderEndpoints:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str  # "" when the provider has none: the ID token's claims are used alone
    jwks_uri: str


_lock = threading.Lock()
_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def clear_discovery_cache() -> None:
    with _lock:
        _cache.clear()


def _fetch(issuer: str) -> dict[str, Any]:
    url = issuer.rstrip("/") + WELL_KNOWN
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DiscoveryError(f"OpenID discovery at {url} failed: {exc}") from exc
    if not isinstance(document, dict):
        raise DiscoveryError(f"OpenID discovery at {url} did not return a JSON object")
    if str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise DiscoveryError(f"OpenID discovery at {url} names issuer {document.get('issuer')!r}, not {issuer!r}")
    return document


def _discovered(issuer: str) -> dict[str, Any]:
    max_age = settings.OIDC_DISCOVERY_CACHE_SECONDS
    now = time.monotonic()
    with _lock:
        hit = _cache.get(issuer)
        if hit is not None and now - hit[0] < max_age:
            return hit[1]
    document = _fetch(issuer)  # outside the lock: a slow provider must not block other issuers' users
    with _lock:
        _cache[issuer] = (now, document)
    return document


def provider_endpoints() -> ProviderEndpoints:
    """Explicit settings first, discovery (cached) for the rest; ``DiscoveryError`` if one is missing."""
    issuer = settings.OIDC_OP_ISSUER
    explicit = {name: str(getattr(settings, setting, "") or "") for name, setting in _FIELDS.items()}
    needed = [name for name in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not explicit[name]]
    if needed or not explicit["userinfo_endpoint"]:
        document = _discovered(issuer)
        for name in _FIELDS:
            if not explicit[name]:
                explicit[name] = str(document.get(name) or "")
    missing = [name for name in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not explicit[name]]
    if missing:
        raise DiscoveryError(f"the OpenID provider {issuer} names no {', '.join(missing)}")
    return ProviderEndpoints(issuer=issuer, **explicit)
