"""The UDP side of gossip: a thin DatagramProtocol around the membership core."""

from __future__ import annotations

from typing import Callable

from twisted.internet.protocol import DatagramProtocol


class GossipProtocol(DatagramProtocol):
    """Hands every datagram to ``deliver(data, (host, port))``; sends what it is given."""

    def __init__(self, deliver: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._deliver = deliver

    def datagramReceived(self, data: bytes, addr: tuple) -> None:
        self._deliver(data, (addr[0], addr[1]))

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.write(data, address)
