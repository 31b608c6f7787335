"""What a node seals and what it accepts, with the rollout switches (gossipdht.core.sealing)."""

from __future__ import annotations

import pytest

from gossipdht.core.keyring import OVERHEAD, Keyring
from gossipdht.core.sealing import NO_KEY_OPENS, NO_KEYRING, PLAINTEXT, Refused, Sealing

KEY = b"k" * 32


def sealing(**kwargs) -> Sealing:
    return Sealing(Keyring([KEY]), "prod", **kwargs)


def test_without_a_keyring_everything_is_plaintext_and_sealed_messages_are_refused():
    plain = Sealing()
    assert not plain.seals and not plain.requires and plain.overhead == 0
    assert plain.seal(b"\x01datagram", b"gossip") == b"\x01datagram"
    assert plain.open(b"\x01datagram", b"gossip") == b"\x01datagram"
    with pytest.raises(Refused) as e:
        plain.open(sealing().seal(b"\x01datagram", b"gossip"), b"gossip")
    assert e.value.reason == NO_KEYRING


def test_with_a_keyring_it_seals_and_refuses_plaintext():
    keyed = sealing()
    assert keyed.seals and keyed.requires and keyed.overhead == OVERHEAD
    sealed = keyed.seal(b"\x01datagram", b"gossip")
    assert sealed != b"\x01datagram" and keyed.open(sealed, b"gossip") == b"\x01datagram"
    with pytest.raises(Refused) as e:
        keyed.open(b"\x01datagram", b"gossip")
    assert e.value.reason == PLAINTEXT


def test_another_cluster_name_or_purpose_does_not_open_even_with_the_same_key():
    sealed = sealing().seal(b"m", b"gossip")
    for other, purpose in ((Sealing(Keyring([KEY]), "staging"), b"gossip"), (sealing(), b"rpc-hello")):
        with pytest.raises(Refused) as e:
            other.open(sealed, purpose)
        assert e.value.reason == NO_KEY_OPENS


def test_the_rollout_switches_accept_plaintext_and_send_it():
    accepting = sealing(verify_incoming=False)
    assert accepting.open(b"\x01datagram", b"gossip") == b"\x01datagram"
    assert accepting.seals and not accepting.requires
    sending_plain = sealing(verify_incoming=False, verify_outgoing=False)
    assert sending_plain.seal(b"\x01datagram", b"gossip") == b"\x01datagram"
    # Keys installed, not yet used to send: the datagram budget already counts the seal.
    assert sending_plain.overhead == OVERHEAD
    assert sending_plain.open(sealing().seal(b"m", b"gossip"), b"gossip") == b"m"
