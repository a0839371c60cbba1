"""Authentication backends: OpenID Connect (mozilla-django-oidc, hardened) and the local-password switch.

``SSOBackend`` keeps the library's flow (code -> token endpoint -> ID token -> userinfo) but:

* costs nothing until a callback arrives: endpoints are resolved (explicitly or by discovery)
  only when a code is exchanged, so local logins and session lookups never reach the provider;
* verifies the ID token fully: the signature with the provider's JWKS key for the configured
  algorithm only, ``iss`` equal to ``OIDC_OP_ISSUER``, ``aud`` containing the client id (``azp``
  when there are several audiences), ``exp``/``iat`` present and current (``OIDC_CLOCK_SKEW_SECONDS``
  leeway) and the session's ``nonce`` (the library itself skips the audience check);
* matches people by ``iss`` + ``sub`` and applies the role map (registry_app/auth/services.py);
* turns every refusal into ``PermissionDenied`` with a reason kept on the request, so Django stops
  trying other backends, axes counts the failure and the callback view shows why.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import absolutify

from registry_app.sso.discovery import DiscoveryError, ProviderEndpoints, provider_endpoints
from registry_app.sso.roles import identity_from_claims
from registry_app.sso.services import SSOLoginRefused, sso_user_login

__all__ = ["REQUEST_ERROR_ATTR", "LocalPasswordBackend", "SSOBackend"]

logger = logging.getLogger(__name__)
REQUEST_ERROR_ATTR = "sso_error"  # the reason a callback failed, for the message the user sees
REQUIRED_ID_TOKEN_CLAIMS = ["iss", "sub", "aud", "exp", "iat"]


class LocalPasswordBackend(ModelBackend):
    """Django's username/password backend, switched off by ``LOCAL_LOGIN_ENABLED=false``.

    Refusing here (not only on the login page) also closes the admin's login form and any other
    caller of ``authenticate(username=..., password=...)``.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:  # noqa: E501
        if not settings.LOCAL_LOGIN_ENABLED:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class _Refused(Exception):
    """Internal: a reason to refuse this callback, shown to the user and logged."""


class SSOBackend(OIDCAuthenticationBackend):
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: B027 - no provider call here, unlike the parent
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self._endpoints: ProviderEndpoints | None = None

    # endpoints, resolved on first use ------------------------------------------------------------
    @property
    def endpoints(self) -> ProviderEndpoints:
        if self._endpoints is None:
            self._endpoints = provider_endpoints()
        return self._endpoints

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:  # noqa: N802 - the library's attribute names
        return self.endpoints.token_endpoint

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:  # noqa: N802
        return self.endpoints.userinfo_endpoint

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:  # noqa: N802
        return self.endpoints.jwks_uri

    # the flow ------------------------------------------------------------------------------------
    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:  # type: ignore[override]
        """Only for the callback view (which passes ``nonce``); every other authenticate() gets None."""
        if request is None or not settings.OIDC_ENABLED or "nonce" not in kwargs:
            return None
        code, state = request.GET.get("code"), request.GET.get("state")
        if not code or not state:
            return None
        self.request = request
        try:
            return self._login(request, code, kwargs.get("nonce"), kwargs.get("code_verifier"))
        except _Refused as exc:
            reason = str(exc)
        except SSOLoginRefused as exc:
            reason = f"the account cannot sign in: {exc}"
        except DiscoveryError as exc:
            reason = f"the identity provider could not be reached: {exc}"
        except requests.RequestException as exc:
            reason = f"the identity provider refused or failed the request: {_http_reason(exc)}"
        logger.warning("SSO login refused: %s", reason)
        setattr(request, REQUEST_ERROR_ATTR, reason)
        raise PermissionDenied(reason)

    def _login(self, request: HttpRequest, code: str, nonce: str | None, code_verifier: str | None) -> Any:
        payload = {
            "client_id": self.OIDC_RP_CLIENT_ID,
            "client_secret": self.OIDC_RP_CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": absolutify(request, reverse("oidc_authentication_callback")),
        }
        if code_verifier is not None:
            payload["code_verifier"] = code_verifier
        token_info = self.get_token(payload)
        id_token, access_token = token_info.get("id_token"), token_info.get("access_token")
        if not isinstance(id_token, str) or not id_token:
            raise _Refused("the token response carries no ID token")
        claims = self.verify_token(id_token, nonce=nonce)
        if self.OIDC_OP_USER_ENDPOINT and access_token:
            userinfo = self.get_userinfo(access_token, id_token, claims)
            if not isinstance(userinfo, dict) or userinfo.get("sub") != claims["sub"]:
                raise _Refused("the userinfo answer is for another subject")
            # The ID token's registered claims stay authoritative; userinfo adds or refreshes the rest.
            claims = {**userinfo, **{name: claims[name] for name in REQUIRED_ID_TOKEN_CLAIMS}}
        try:
            identity = identity_from_claims(claims, groups_claim=settings.OIDC_GROUPS_CLAIM)
        except ValueError as exc:
            raise _Refused(str(exc)) from exc
        self.store_tokens(access_token, id_token)
        correlation = str(request.META.get("HTTP_X_REQUEST_ID") or "")[:64]
        return sso_user_login(identity, correlation_id=correlation)

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """The ID token's claims after every check in the module docstring; ``_Refused`` otherwise."""
        nonce = kwargs.get("nonce")
        algorithm = self.OIDC_RP_SIGN_ALGO
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != algorithm:
                raise _Refused(f"the ID token is signed with {header.get('alg')!r}, not {algorithm}")
            key = self.OIDC_RP_CLIENT_SECRET if algorithm.startswith("HS") else self.retrieve_matching_jwk(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_OP_ISSUER,
                leeway=settings.OIDC_CLOCK_SKEW_SECONDS,
                options={"require": REQUIRED_ID_TOKEN_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _Refused("the ID token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise _Refused("the ID token is meant for another client (aud)") from exc
        except jwt.InvalidIssuerError as exc:
            raise _Refused("the ID token comes from another issuer (iss)") from exc
        except jwt.InvalidSignatureError as exc:
            raise _Refused("the ID token's signature does not verify") from exc
        except (jwt.PyJWTError, SuspiciousOperation, KeyError, TypeError, ValueError) as exc:
            raise _Refused(f"the ID token is not valid: {exc}") from exc
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise _Refused("the ID token has several audiences and another authorized party (azp)")
        if settings.OIDC_USE_NONCE and claims.get("nonce") != nonce:
            raise _Refused("the ID token's nonce does not match this login")
        return claims

    def get_user(self, user_id: Any) -> Any:
        """Sessions opened through SSO end when SSO is switched off or the account is deactivated."""
        if not settings.OIDC_ENABLED:
            return None
        return ModelBackend.get_user(self, user_id)  # checks is_active, unlike the library's


def _http_reason(exc: requests.RequestException) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code} from {response.url}"
    return type(exc).__name__
