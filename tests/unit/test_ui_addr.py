"""`gitward ui --addr`: which addresses count as loopback, and what a bad address says."""

from __future__ import annotations

import pytest

from engine.cli.ui import parse_addr
from engine.errors import UserError
from engine.ui.guard import is_loopback


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("example.com", False),
])
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("addr, parsed", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:9000", ("::1", 9000)),
    ("0.0.0.0:1", ("0.0.0.0", 1)),
])
def test_parse_addr(addr: str, parsed: tuple[str, int]) -> None:
    assert parse_addr(addr) == parsed


@pytest.mark.parametrize("addr", ["8080", "127.0.0.1", ":8080", "host:http", "h:70000", "h:0"])
def test_a_bad_addr_says_what_is_expected(addr: str) -> None:
    with pytest.raises(UserError, match="expected HOST:PORT"):
        parse_addr(addr)
