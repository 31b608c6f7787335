"""What membership and settlement ask other nodes, over the internal RPC connection.

The push/pull of member lists, TCP probes, member lists, transfer and activity reports travel on
the connection that carries data between nodes, so that they are sealed and
authenticated as it is (``rpc``).
"""

from __future__ import annotations

import json

from gossipdht.core.address import Address
from gossipdht.core.errors import PeerError
from gossipdht.net.rpc import RpcClient

#: What a transfers report holds at least.
TRANSFERS_FIELDS = {"node", "ring", "settled", "sending", "receiving", "waiting"}


class PeerClient:
    """Membership's calls to other nodes, each with a deadline; PeerError when one fails."""

    def __init__(self, rpc: RpcClient) -> None:
        self._rpc = rpc

    async def push_pull(self, address: tuple[str, int], state: bytes, timeout: float) -> bytes:
        return await self._rpc.call(address, "pushpull", state, timeout)

    async def ping(self, address: tuple[str, int], name: str, timeout: float) -> bool:
        """Whether the node at ``address`` is the member ``name`` and answered."""
        try:
            await self._rpc.call(address, "ping", name.encode(), timeout)
        except PeerError as e:
            if e.status == 404:  # another node now listens there
                return False
            raise
        return True

    async def peers(self, address: tuple[str, int], timeout: float) -> list[str]:
        """The member's ``/dht/peers`` names; the RPC carries them CRLF-separated, without the
        API's final line break, as nodes of the version before send and expect them."""
        return (await self._rpc.call(address, "peers", b"", timeout)).decode().split("\r\n")

    async def transfers(self, address: tuple[str, int], timeout: float) -> dict:
        """The member's own transfers report (``GET /dht/transfers`` as JSON)."""
        return self._json(address, await self._rpc.call(address, "transfers", b"", timeout), TRANSFERS_FIELDS,
                          "transfers report")

    async def activity(self, address: tuple[str, int], timeout: float) -> dict:
        """The member's own activity report (``GET /dht/activity``)."""
        return self._json(address, await self._rpc.call(address, "activity", b"", timeout),
                          {"node", "keys_held", "requests"}, "activity report")

    async def keyring(self, address: tuple[str, int], request: dict, timeout: float) -> dict:
        """The member's answer to a keyring operation (``keyring.KeyringManager.apply``)."""
        body = await self._rpc.call(address, "keyring", json.dumps(request).encode(), timeout)
        return self._json(address, body, {"keys", "primary"}, "keyring answer")

    @staticmethod
    def _json(address: tuple[str, int], body: bytes, fields: set[str], what: str) -> dict:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not fields <= answer.keys():
            raise PeerError(f"{Address(*address)} sent a bad {what}")
        return answer
