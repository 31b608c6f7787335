"""How a node seals what it sends to other nodes and what it accepts from them.

With a keyring, gossip datagrams and internal calls are sealed with it, the cluster's
name bound to each as additional data.  ``verify_incoming=False`` also accepts
plaintext and ``verify_outgoing=False`` still sends it: the two steps of turning
encryption on in a running cluster, as memberlist's ``GossipVerifyIncoming`` and
``GossipVerifyOutgoing`` allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from gossipdht.core.keyring import OVERHEAD, SEALED, Keyring, Unopened

#: Why a message was refused, as counted in ``/dht/stats``.
PLAINTEXT = "plaintext"
NO_KEY_OPENS = "no_key_opens"
NO_KEYRING = "sealed_but_no_keyring"
REASONS = (PLAINTEXT, NO_KEY_OPENS, NO_KEYRING)


class Refused(ValueError):
    """A message this node does not accept; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Sealing:
    """This node's keyring (None: none), its cluster's name, and the two rollout switches."""

    keyring: Optional[Keyring] = None
    cluster: str = ""
    verify_incoming: bool = True
    verify_outgoing: bool = True

    @property
    def seals(self) -> bool:
        """Whether what this node sends is sealed."""
        return self.keyring is not None and self.verify_outgoing

    @property
    def requires(self) -> bool:
        """Whether this node refuses what is not sealed."""
        return self.keyring is not None and self.verify_incoming

    @property
    def overhead(self) -> int:
        """What sealing adds to a datagram, counted even while it is not sealed yet."""
        return OVERHEAD if self.keyring is not None else 0

    def _aad(self, purpose: bytes) -> bytes:
        return self.cluster.encode() + b"\0" + purpose

    def seal(self, data: bytes, purpose: bytes) -> bytes:
        """``data`` as sent: sealed for ``purpose`` in this cluster, or as it is."""
        return self.keyring.seal(data, self._aad(purpose)) if self.seals else data

    def open(self, data: bytes, purpose: bytes) -> bytes:
        """What was sent, if this node accepts it; Refused if not."""
        if data[:1] == bytes([SEALED]):
            return self.open_sealed(data, purpose)
        self.check_plaintext()
        return data

    def open_sealed(self, data: bytes, purpose: bytes) -> bytes:
        """What was sealed for ``purpose``; Refused if this node cannot open it, or it is not sealed."""
        return self.open_sealed_with_key(data, purpose)[0]

    def open_sealed_with_key(self, data: bytes, purpose: bytes) -> tuple[bytes, bytes]:
        """What ``open_sealed`` gives, and the key of the keyring that opened it."""
        if self.keyring is None:
            raise Refused(NO_KEYRING, "it is sealed, and this node has no keyring")
        try:
            return self.keyring.open_with_key(data, self._aad(purpose))
        except Unopened:
            raise Refused(NO_KEY_OPENS, "no key installed here opens it: the keyrings or the "
                                        "cluster names differ") from None

    def check_plaintext(self) -> None:
        """Refused if this node accepts nothing that is not sealed."""
        if self.requires:
            raise Refused(PLAINTEXT, "it is not sealed, and this node accepts only what its keyring opens")
