"""The client's address, behind a known number of reverse proxies (``TRUSTED_PROXY_COUNT``).

Each proxy in front of the app appends the address it received the request from to
``X-Forwarded-For`` (nginx's ``$proxy_add_x_forwarded_for``, AWS ALB, Traefik and Caddy do), so
behind N proxies the client's address is the N-th entry from the right. Entries further left are
whatever the client sent and are never read: a client cannot pick the address it is throttled
under. With N = 0 (the default: the app is reached directly) the address is ``REMOTE_ADDR``.

A request carrying fewer entries than N came through fewer proxies than configured (or straight
to the app server); the left-most entry, written by the first proxy it did pass, is then the best
known address, and ``REMOTE_ADDR`` when there is none. An entry that is not an IP address (with or
without a port) counts as missing. Login throttling (django-axes, ``AXES_CLIENT_IP_CALLABLE``) and
the password-reset limits key on this address.
"""

from __future__ import annotations

import ipaddress
import re

from django.conf import settings
from django.http import HttpRequest

_BRACKETED = re.compile(r"\[([0-9a-fA-F:.]+)\](?::\d+)?")


def parse_address(text: str) -> str | None:
    """``text`` as a normalised IP address (``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80``), else None."""
    text = text.strip()
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed:
        text = bracketed.group(1)
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR") or ""
    count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if count > 0:
        hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if hops:
            chosen = parse_address(hops[-count] if len(hops) >= count else hops[0])
            if chosen:
                return chosen
    return parse_address(remote) or remote
