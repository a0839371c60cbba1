"""A small, real OpenID Connect provider on loopback, for the tests and ``make demo``.

It speaks plain HTTP on 127.0.0.1 (issuer ``http://127.0.0.1:PORT``) and implements what an
authorization-code client needs, nothing more:

``GET /.well-known/openid-configuration``
    Discovery: the issuer and the endpoints below.
``GET /authorize``
    Checks ``client_id`` and the exact ``redirect_uri`` (an unknown pair gets a 400 page, never a
    redirect), ``response_type=code``, the ``openid`` scope and any PKCE challenge. The user is the
    one named by ``login_hint``, else the configured auto-approve user, else the person picks one on
    a tiny form (``POST /authorize``). Answers with a redirect carrying a one-time ``code`` and the
    ``state``.
``POST /token``
    The authorization-code grant: client secret (HTTP Basic or form fields), the code (single use,
    60 s), the same ``redirect_uri``, the PKCE verifier when a challenge was sent. Issues an access
    token and an RS256-signed ID token (``iss``, ``sub``, ``aud``, ``azp``, ``exp``, ``iat``,
    ``nonce``, email, names and the groups claim).
``GET /jwks``
    The public signing key.
``GET /userinfo``
    The user's claims for a ``Bearer`` access token, groups as they are *now* (so a test or the demo
    can change a user's groups between two logins).

Faults for tests (``provider.faults``): ``expired``, ``wrong_audience``, ``wrong_issuer``,
``wrong_nonce``, ``tampered`` (the payload is changed after signing), ``foreign_key`` (signed by a
key the JWKS does not hold, same ``kid``) and ``unsigned`` (``alg: none``).

No Django import: ``python -m registry_app.devtools.fake_oidc --port 9000`` runs it alone, and
``manage.py fake_oidc_provider`` wraps the same ``main``. It auto-approves whoever is picked: it
binds only to loopback addresses and must never stand in front of a real dashboard.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import ipaddress
import json
import secrets
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_USERS",
    "TOKEN_FAULTS",
    "FakeClient",
    "FakeOIDCProvider",
    "FakeUser",
    "main",
]

TOKEN_FAULTS = frozenset(
    {"expired", "wrong_audience", "wrong_issuer", "wrong_nonce", "tampered", "foreign_key", "unsigned"}
)
CODE_LIFETIME_SECONDS = 60
SIGN_ALGORITHM = "RS256"
MAX_BODY_BYTES = 64 * 1024
DEMO_CLIENT_ID = "governance-dashboard"
DEMO_CLIENT_SECRET = "demo-oidc-client-secret"  # noqa: S105 - the fake provider's own, printed by the demo


@dataclass
class FakeUser:
    """A person at the fake IdP. ``sub`` defaults to a UUID derived from the username (stable across runs)."""

    username: str
    email: str = ""
    name: str = ""
    groups: list[str] = field(default_factory=list)
    sub: str = ""

    def __post_init__(self) -> None:
        if not self.sub:
            self.sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-oidc:{self.username}"))
        if not self.email:
            self.email = f"{self.username}@acme.example"
        if not self.name:
            self.name = self.username.replace("-", " ").title()


@dataclass(frozen=True)
class FakeClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


DEMO_USERS: tuple[FakeUser, ...] = (
    FakeUser("sso-mlead", name="Sam Mlead", groups=["idp-ml-leads", "idp-everyone"]),
    FakeUser("sso-fairness", name="Fran Fairness", groups=["idp-fairness", "idp-everyone"]),
    FakeUser("sso-compliance", name="Cody Compliance", groups=["idp-compliance", "idp-everyone"]),
    FakeUser("sso-admin", name="Alex Admin", groups=["idp-admins", "idp-everyone"]),
    FakeUser("sso-nobody", name="Noel Nobody", groups=["idp-everyone"]),
)


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    username: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    expires_at: float


@dataclass(frozen=True)
class _AccessToken:
    client_id: str
    username: str
    expires_at: float


class _OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class FakeOIDCProvider:
    """The provider: ``start()`` serves in a daemon thread, ``stop()`` shuts it down (or use ``with``)."""

    def __init__(
        self,
        *,
        clients: list[FakeClient],
        users: list[FakeUser] | tuple[FakeUser, ...],
        host: str = "127.0.0.1",
        port: int = 0,
        auto_approve: str | None = None,
        groups_claim: str = "groups",
        token_lifetime: int = 300,
        log: Any = None,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the fake OIDC provider binds to loopback only, not {host!r}")
        self.clients = {client.client_id: client for client in clients}
        self.users = {user.username: user for user in users}
        if auto_approve is not None and auto_approve not in self.users:
            raise ValueError(f"auto-approve user {auto_approve!r} is not one of the provider's users")
        self.auto_approve = auto_approve
        self.groups_claim = groups_claim
        self.token_lifetime = token_lifetime
        self.faults: set[str] = set()
        self.hits: Counter[str] = Counter()  # requests per path, for tests that count round trips
        self._log = log
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_numbers = self._key.public_key().public_numbers()
        # kid: the key's RFC 7638 thumbprint, so a restarted provider announces a new kid.
        thumbprint_input = json.dumps(
            {
                "e": _b64url(public_numbers.e.to_bytes((public_numbers.e.bit_length() + 7) // 8, "big")),
                "kty": "RSA",
                "n": _b64url(public_numbers.n.to_bytes((public_numbers.n.bit_length() + 7) // 8, "big")),
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        self.kid = _b64url(hashlib.sha256(thumbprint_input.encode()).digest())[:16]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------------
    def start(self) -> FakeOIDCProvider:
        server = ThreadingHTTPServer((self._host, self._port), _Handler)
        server.daemon_threads = True
        server.provider = self  # type: ignore[attr-defined]
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, name="fake-oidc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOIDCProvider:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def issuer(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    # people --------------------------------------------------------------------------------------
    def set_groups(self, username: str, groups: list[str]) -> None:
        """Change a user's IdP groups; the next token or userinfo answer carries them."""
        self.users[username].groups = list(groups)

    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [SIGN_ALGORITHM],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "name", self.groups_claim],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "alg": SIGN_ALGORITHM, "use": "sig"})
        return {"keys": [jwk]}

    def user_claims(self, user: FakeUser) -> dict[str, Any]:
        first, _, last = user.name.partition(" ")
        return {
            "sub": user.sub,
            "email": user.email,
            "email_verified": True,
            "name": user.name,
            "given_name": first,
            "family_name": last,
            "preferred_username": user.username,
            self.groups_claim: list(user.groups),
        }

    # the flow ------------------------------------------------------------------------------------
    def check_authorization_request(self, params: dict[str, str]) -> FakeClient:
        """The client and its exact redirect URI, or ``_OAuthError`` with status 400 (shown, not redirected)."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            raise _OAuthError("invalid_client", "Unknown client_id.")
        if params.get("redirect_uri", "") not in client.redirect_uris:
            raise _OAuthError("invalid_request", "redirect_uri is not registered for this client.")
        return client

    def authorization_error(self, params: dict[str, str]) -> tuple[str, str] | None:
        """Errors reported to the client by redirect (the redirect URI is known to be registered)."""
        if params.get("response_type") != "code":
            return "unsupported_response_type", "Only the authorization code flow is supported."
        if "openid" not in params.get("scope", "").split():
            return "invalid_scope", "The openid scope is required."
        if params.get("code_challenge") and params.get("code_challenge_method", "plain") not in ("S256", "plain"):
            return "invalid_request", "Unsupported code_challenge_method."
        return None

    def approve(self, params: dict[str, str], username: str) -> str:
        """Issue a one-time code for ``username``; return the redirect location."""
        code = secrets.token_urlsafe(32)
        grant = _Grant(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            username=username,
            nonce=params.get("nonce") or None,
            code_challenge=params.get("code_challenge") or None,
            code_challenge_method=params.get("code_challenge_method") or "plain",
            expires_at=time.time() + CODE_LIFETIME_SECONDS,
        )
        with self._lock:
            self._grants[code] = grant
        return _with_query(params["redirect_uri"], {"code": code, "state": params.get("state", "")})

    def exchange_code(self, form: dict[str, str], authorization: str) -> dict[str, Any]:
        client = self._authenticate_client(form, authorization)
        if form.get("grant_type") != "authorization_code":
            raise _OAuthError("unsupported_grant_type", "Only authorization_code is supported.")
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # single use, even when refused below
        if grant is None or grant.expires_at < time.time():
            raise _OAuthError("invalid_grant", "The code is unknown, used or expired.")
        if grant.client_id != client.client_id:
            raise _OAuthError("invalid_grant", "The code was issued to another client.")
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise _OAuthError("invalid_grant", "redirect_uri differs from the authorization request.")
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if grant.code_challenge_method == "S256":
                computed = _b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
            else:
                computed = verifier
            if not verifier or not secrets.compare_digest(computed, grant.code_challenge):
                raise _OAuthError("invalid_grant", "PKCE verification failed.")
        user = self.users.get(grant.username)
        if user is None:
            raise _OAuthError("invalid_grant", "The user no longer exists.")
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[access_token] = _AccessToken(
                client.client_id, user.username, time.time() + self.token_lifetime
            )
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "id_token": self.id_token(user, client.client_id, grant.nonce),
        }

    def userinfo(self, authorization: str) -> dict[str, Any]:
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            record = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if record is None or record.expires_at < time.time():
            raise _OAuthError("invalid_token", "Missing, unknown or expired access token.", status=401)
        user = self.users.get(record.username)
        if user is None:
            raise _OAuthError("invalid_token", "The user no longer exists.", status=401)
        return self.user_claims(user)

    def id_token(self, user: FakeUser, client_id: str, nonce: str | None) -> str:
        now = int(time.time())
        faults = set(self.faults)
        claims: dict[str, Any] = {
            "iss": self.issuer + ("/elsewhere" if "wrong_issuer" in faults else ""),
            "aud": "some-other-client" if "wrong_audience" in faults else client_id,
            "azp": client_id,
            "iat": now - 3600 if "expired" in faults else now,
            "auth_time": now,
            "exp": now - 1800 if "expired" in faults else now + self.token_lifetime,
            **self.user_claims(user),
        }
        if nonce is not None or "wrong_nonce" in faults:
            claims["nonce"] = "not-the-nonce-that-was-sent" if "wrong_nonce" in faults else nonce
        headers = {"kid": self.kid}
        if "unsigned" in faults:
            header = _b64url(json.dumps({"alg": "none", "typ": "JWT", **headers}).encode())
            return f"{header}.{_b64url(json.dumps(claims).encode())}."
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if "foreign_key" in faults else self._key
        token = jwt.encode(claims, key, algorithm=SIGN_ALGORITHM, headers=headers)
        if "tampered" in faults:
            # Keep the genuine signature, change what it covers: a forged admin group.
            head, _, rest = token.partition(".")
            signature = rest.rpartition(".")[2]
            forged = {**claims, self.groups_claim: [*user.groups, "idp-admins"]}
            token = f"{head}.{_b64url(json.dumps(forged).encode())}.{signature}"
        return token

    def _authenticate_client(self, form: dict[str, str], authorization: str) -> FakeClient:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value.strip()).decode("utf-8")
            except ValueError as exc:
                raise _OAuthError("invalid_client", "Malformed Basic credentials.", status=401) from exc
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, secret = unquote(basic_id), unquote(basic_secret)  # RFC 6749 2.3.1: form-encoded
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(secret.encode(), client.client_secret.encode()):
            raise _OAuthError("invalid_client", "Client authentication failed.", status=401)
        return client

    def log(self, message: str) -> None:
        if self._log is not None:
            self._log(message)


def _with_query(url: str, params: dict[str, str]) -> str:
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}{urlencode(params)}"


_AUTH_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><main><h1>{title}</h1>{body}</main></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeOIDC/1"
    protocol_version = "HTTP/1.1"

    @property
    def provider(self) -> FakeOIDCProvider:
        return self.server.provider  # type: ignore[attr-defined,no-any-return]

    # plumbing ------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        self.provider.log(f"{self.address_string()} {format % args}")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(document).encode(), "application/json", headers)

    def _html(self, status: int, title: str, body: str) -> None:
        page = _PAGE.format(title=html.escape(title), body=body)
        self._send(status, page.encode(), "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self._send(HTTPStatus.FOUND, b"", "text/plain", {"Location": location})

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise _OAuthError("invalid_request", "Request body too large.", status=413)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}

    def _query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}

    # routes --------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        provider = self.provider
        self._dispatch(
            {
                "/.well-known/openid-configuration": lambda: self._json(200, provider.discovery()),
                "/jwks": lambda: self._json(200, provider.jwks()),
                "/authorize": lambda: self._authorize(self._query(), chosen=None),
                "/userinfo": self._userinfo,
            }
        )

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        provider = self.provider
        authorization = self.headers.get("Authorization", "")
        self._dispatch(
            {
                "/token": lambda: self._json(200, provider.exchange_code(self._form(), authorization)),
                "/authorize": lambda: self._authorize(form := self._form(), chosen=form.get("user", "")),
                "/userinfo": self._userinfo,
            }
        )

    def _dispatch(self, routes: dict[str, Callable[[], None]]) -> None:
        path = urlsplit(self.path).path
        self.provider.hits[path] += 1
        route = routes.get(path)
        try:
            if route is None:
                self._json(404, {"error": "not_found"})
            else:
                route()
        except _OAuthError as exc:
            self._oauth_error(exc)

    def _userinfo(self) -> None:
        self._json(200, self.provider.userinfo(self.headers.get("Authorization", "")))

    def _oauth_error(self, exc: _OAuthError) -> None:
        headers = {"WWW-Authenticate": f'Bearer error="{exc.error}"'} if exc.status == 401 else None
        self._json(exc.status, {"error": exc.error, "error_description": exc.description}, headers)

    def _authorize(self, params: dict[str, str], *, chosen: str | None) -> None:
        provider = self.provider
        try:
            provider.check_authorization_request(params)
        except _OAuthError as exc:
            self._html(400, "Authorization request refused", f"<p>{html.escape(exc.description)}</p>")
            return
        problem = provider.authorization_error(params)
        if problem is not None:
            error, description = problem
            self._redirect(
                _with_query(
                    params["redirect_uri"],
                    {"error": error, "error_description": description, "state": params.get("state", "")},
                )
            )
            return
        username = chosen if chosen is not None else (params.get("login_hint") or provider.auto_approve or "")
        if username in provider.users:
            self._redirect(provider.approve(params, username))
            return
        if chosen:
            self._html(400, "Unknown user", f"<p>No user {html.escape(chosen)} at this provider.</p>")
            return
        self._html(200, "Fake identity provider: sign in as", self._picker(params))

    def _picker(self, params: dict[str, str]) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
            for name in _AUTH_PARAMS
            if name in params
        )
        rows = "".join(
            f'<li><button type="submit" name="user" value="{html.escape(user.username)}">'
            f"{html.escape(user.username)}</button> {html.escape(user.name)} &lt;{html.escape(user.email)}&gt;"
            f" groups: {html.escape(', '.join(user.groups) or '(none)')}</li>"
            for user in self.provider.users.values()
        )
        return (
            "<p>Test provider: pick the person to sign in as. No password is asked.</p>"
            f'<form method="post" action="/authorize">{hidden}<ul>{rows}</ul></form>'
        )


# --------------------------------------------------------------------------------------------- command line


def parse_user(spec: str) -> FakeUser:
    """``username[:email[:group1,group2]]``."""
    username, _, rest = spec.partition(":")
    email, _, groups = rest.partition(":")
    if not username:
        raise argparse.ArgumentTypeError(f"bad --user {spec!r}: use username[:email[:group1,group2]]")
    return FakeUser(username=username, email=email, groups=[g.strip() for g in groups.split(",") if g.strip()])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options (shared by ``python -m`` and ``manage.py fake_oidc_provider``)."""
    parser.add_argument("--host", default="127.0.0.1", help="Loopback address to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=9000, help="Port (0 = any free port; default 9000).")
    parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEMO_CLIENT_SECRET)
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="Registered redirect URI (repeatable); default http://127.0.0.1:8000/oidc/callback/ and localhost's",
    )
    parser.add_argument(
        "--user",
        action="append",
        type=parse_user,
        default=[],
        help="username[:email[:group1,group2]] (repeatable); default: the demo users",
    )
    parser.add_argument("--auto-approve", default=None, help="Sign in as this user without showing the picker.")
    parser.add_argument("--groups-claim", default="groups")
    parser.add_argument("--verbose", action="store_true", help="Log every request to stderr.")


def provider_from_options(options: Any) -> FakeOIDCProvider:
    redirect_uris = options.redirect_uri or [
        "http://127.0.0.1:8000/oidc/callback/",
        "http://localhost:8000/oidc/callback/",
    ]
    # Copies of the demo users: set_groups must not change the module's defaults.
    users = options.user or [FakeUser(u.username, u.email, u.name, list(u.groups), u.sub) for u in DEMO_USERS]
    return FakeOIDCProvider(
        clients=[FakeClient(options.client_id, options.client_secret, tuple(redirect_uris))],
        users=users,
        host=options.host,
        port=options.port,
        auto_approve=options.auto_approve,
        groups_claim=options.groups_claim,
        log=(lambda message: sys.stderr.write(message + "\n")) if options.verbose else None,
    )


def serve(provider: FakeOIDCProvider, out: Any, stop: threading.Event | None = None) -> int:
    """Serve until ``stop`` is set (by default: until SIGINT/SIGTERM); prints the issuer and the users first."""
    if stop is None:
        stop = threading.Event()

        def _on_signal(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
    with provider:
        client_ids = ", ".join(provider.clients)
        out.write(f"Fake OIDC provider: issuer {provider.issuer} (client id {client_ids})\n")
        for user in provider.users.values():
            out.write(f"  {user.username:<16} groups {', '.join(user.groups) or '(none)'}\n")
        out.flush()
        stop.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fake_oidc", description="A fake OpenID Connect provider on loopback (tests and demo only)."
    )
    add_arguments(parser)
    return serve(provider_from_options(parser.parse_args(argv)), sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
