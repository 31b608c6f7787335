"""Rotating the gossip keyring on a live cluster, as ``serf keys`` does.

``install``, ``use``, ``remove`` and ``list`` act on this node, then on every live
member over the internal RPC, and the answer says what each member did; a member that
did not answer is named, and the whole operation counts as failed.  Each node saves its
keyring after every change, so a restart keeps the rotated keys.
"""

from __future__ import annotations

import json
from typing import Callable

from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.logger import Logger

from gossipdht.core.errors import PeerError, Refusal
from gossipdht.core.keyring import Keyring, KeyringError, encode_key, fingerprint, parse_key
from gossipdht.core.sealing import Sealing
from gossipdht.membership.member import Member
from gossipdht.net.peer import PeerClient

ACTIONS = ("install", "use", "remove", "list")
ASK_SECONDS = 5.0


def parse_request(body: bytes) -> dict:
    """``{"action": ..., "key": ...}`` checked; Refusal(400) if it is not one."""
    try:
        request = json.loads(body)
    except ValueError:
        raise Refusal(400, 'the body is JSON: {"action": "install", "key": "BASE64"}') from None
    if not isinstance(request, dict) or request.get("action") not in ACTIONS:
        raise Refusal(400, f"action is one of {', '.join(ACTIONS)}")
    if request["action"] != "list":
        if not isinstance(request.get("key"), str):
            raise Refusal(400, f"{request['action']} needs a key")
        try:
            parse_key(request["key"])
        except KeyringError as e:
            raise Refusal(400, str(e)) from None
    return {"action": request["action"], "key": request.get("key")}


class KeyringManager:
    """The keyring operations of ``POST /dht/keyring``: on this node, and on every live member."""

    log = Logger()

    def __init__(self, name: str, sealing: Sealing, save: Callable[[Keyring], None], peers: PeerClient,
                 others: Callable[[], list[Member]]) -> None:
        self._name = name
        self._sealing = sealing
        self._save = save
        self._peers = peers
        self._others = others

    def apply(self, request: dict) -> dict:
        """Do ``request`` (as ``parse_request`` returns it) on this node; Refusal if it cannot."""
        keyring = self._sealing.keyring
        if keyring is None:
            raise Refusal(409, f"{self._name} has no gossip keyring: it was started without --keyring, "
                               "so its traffic is not sealed")
        action = request["action"]
        changed = False
        if action != "list":
            key = parse_key(request["key"])
            try:
                changed = getattr(keyring, action)(key)
            except KeyringError as e:
                raise Refusal(409, f"{self._name}: {e}") from None
            if changed:
                self._save(keyring)
                self.log.info("gossip keyring: {action} {key}; now {count} key(s), primary {primary}",
                              action=action, key=fingerprint(key), count=len(keyring.keys),
                              primary=fingerprint(keyring.primary))
        return {"node": self._name, "keys": [encode_key(k) for k in keyring.keys],
                "primary": encode_key(keyring.primary), "changed": changed}

    def handler(self, body: bytes) -> bytes:
        """The RPC method ``keyring``: another member asks this one to apply an operation."""
        return json.dumps(self.apply(parse_request(body))).encode()

    async def everywhere(self, request: dict) -> tuple[bool, dict]:
        """Whether every live member did it, and the answer: each member's keys, or why not."""
        nodes = {self._name: self.apply(request)}
        others = self._others()

        async def ask(member: Member) -> dict:
            try:
                return await self._peers.keyring(member.api_address, request, ASK_SECONDS)
            except PeerError as e:
                return {"node": member.name, "error": str(e)}

        answers = await gatherResults([ensureDeferred(ask(m)) for m in others])
        nodes.update({member.name: answer for member, answer in zip(others, answers)})
        failed = sorted(name for name, answer in nodes.items() if "error" in answer)
        counts: dict[str, int] = {}
        for answer in nodes.values():
            for key in answer.get("keys", []):
                counts[key] = counts.get(key, 0) + 1
        return not failed, {"action": request["action"], "members": len(nodes), "failed": failed,
                            "keys": counts, "nodes": [nodes[name] for name in sorted(nodes)]}
