"""Addresses and seed lists, parsed strictly."""

import re

import pytest

from gossipdht.core.address import MAX_SEEDS, Address, AddressError, parse_address, parse_seeds


def test_parse_address():
    assert parse_address("example.org:80", "join") == Address("example.org", 80)
    assert parse_address("[fe80::1]:9", "join") == Address("fe80::1", 9)


@pytest.mark.parametrize("text", ["example.org", "a:", ":80", "a:0", "a:65536", "a:8o", "[::1]"])
def test_parse_address_refuses_what_is_not_host_port(text):
    with pytest.raises(AddressError, match="^" + re.escape(f"--node: {text!r} is not HOST:PORT") + "$"):
        parse_address(text, "node")


def test_seed_lines_may_carry_a_name_and_are_numbered_in_errors():
    assert parse_seeds("a:1\r\nname:b:2\n\n[::1]:3\nn:[::2]:4\n") == [
        Address("a", 1), Address("b", 2), Address("::1", 3), Address("::2", 4)]
    with pytest.raises(AddressError, match="^line 2: 'nope' is not HOST:PORT or NAME:HOST:PORT$"):
        parse_seeds("a:1\nnope\n")
    with pytest.raises(AddressError, match="^no seeds given"):
        parse_seeds("\n")
    with pytest.raises(AddressError, match=f"seeds; at most {MAX_SEEDS}$"):
        parse_seeds("\n".join(f"h:{i + 1}" for i in range(MAX_SEEDS + 1)))
    assert str(Address("::1", 3)) == "[::1]:3" and str(Address("a", 1)) == "a:1"
