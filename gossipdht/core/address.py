"""Where a node listens: ``host:port`` addresses and lists of seeds, parsed strictly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_SEEDS = 64


class AddressError(ValueError):
    """An address or a seed list is wrong; the message fits on one line."""


@dataclass(frozen=True)
class Address:
    """A host (name, IPv4 or IPv6 address) and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: Any, setting: str) -> Address:
    """``host:port`` or ``[v6-address]:port``; ``setting`` names the option in the error."""
    host, sep, port = str(text).rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise AddressError(f"--{setting}: {text!r} is not HOST:PORT")
    return Address(host, int(port))


def parse_seeds(text: str) -> list[Address]:
    """Lines of ``host:port`` or ``name:host:port`` (the name is informative only)."""
    seeds = []
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        rest, _, port = line.rpartition(":")
        host = rest[rest.rfind("["):] if rest.endswith("]") else rest.rpartition(":")[2]
        try:
            seeds.append(parse_address(f"{host}:{port}", "join"))
        except AddressError:
            raise AddressError(f"line {number}: {line!r} is not HOST:PORT or NAME:HOST:PORT") from None
    if not seeds:
        raise AddressError("no seeds given: send lines of HOST:PORT")
    if len(seeds) > MAX_SEEDS:
        raise AddressError(f"{len(seeds)} seeds; at most {MAX_SEEDS}")
    return seeds
