"""The client address behind TRUSTED_PROXY_COUNT proxies: the N-th X-Forwarded-For entry from the
right; what the client wrote further left is never read."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from registry_app.ops.client_ip import client_ip, parse_address

PROXY = "10.0.0.2"


def ip(settings: Any, count: int, forwarded: str | None, remote: str = PROXY) -> str:
    settings.TRUSTED_PROXY_COUNT = count
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(RequestFactory().get("/", **meta))


def test_without_proxies_the_peer_is_the_client(settings: Any) -> None:
    assert ip(settings, 0, "198.51.100.7", remote="203.0.113.5") == "203.0.113.5"  # a forged header is ignored


def test_behind_one_proxy_the_last_entry_is_the_client(settings: Any) -> None:
    assert ip(settings, 1, "203.0.113.5") == "203.0.113.5"
    # The client wrote the first two entries itself; nginx appended the address it saw.
    assert ip(settings, 1, "198.51.100.1, 198.51.100.2, 203.0.113.5") == "203.0.113.5"


def test_behind_two_proxies_the_second_entry_from_the_right(settings: Any) -> None:
    assert ip(settings, 2, "198.51.100.1, 203.0.113.5, 10.0.0.9") == "203.0.113.5"


def test_fewer_entries_than_proxies_take_the_first_proxys_view(settings: Any) -> None:
    assert ip(settings, 2, "203.0.113.5") == "203.0.113.5"
    assert ip(settings, 1, None) == PROXY  # straight to the app server
    assert ip(settings, 1, " , ") == PROXY


def test_a_garbled_entry_falls_back_to_the_peer(settings: Any) -> None:
    assert ip(settings, 1, "198.51.100.1, not-an-address") == PROXY
    assert ip(settings, 1, "203.0.113.5\x00") == PROXY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.5", "203.0.113.5"),
        (" 203.0.113.5:8443 ", "203.0.113.5"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("unknown", None),
        ("", None),
        ("999.1.1.1", None),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    assert parse_address(text) == expected
