"""The frames of a sealed connection: they open only in order, in their direction, on
their connection, and only while the connection's key stays installed."""

import pytest

from gossipdht.core.keyring import Keyring, Unopened
from gossipdht.core.session import OVERHEAD, Session

A, B = b"a" * 32, b"b" * 32
CLIENT_NONCE, SERVER_NONCE = b"c" * 16, b"s" * 16


def pair(keyring=None, key=A, cluster="test", client_nonce=CLIENT_NONCE, server_nonce=SERVER_NONCE):
    keyring = keyring or Keyring([A, B])
    return (Session(keyring, key, cluster, client_nonce, server_nonce, client=True),
            Session(keyring, key, cluster, client_nonce, server_nonce, client=False))


def test_frames_open_in_order_both_ways_and_cost_only_a_tag():
    client, server = pair()
    for message in (b"call 1", b"call 2", b"call 3"):
        sealed = client.seal(message)
        assert len(sealed) == len(message) + OVERHEAD and message not in sealed
        assert server.open(sealed) == message
        assert client.open(server.seal(b"answer " + message)) == b"answer " + message


def test_a_replayed_or_reordered_frame_does_not_open():
    client, server = pair()
    first, second = client.seal(b"1"), client.seal(b"2")
    with pytest.raises(Unopened):
        server.open(second)  # sent second, received first
    client, server = pair()
    first = client.seal(b"1")
    assert server.open(first) == b"1"
    with pytest.raises(Unopened):
        server.open(first)  # the same frame again


def test_a_frame_opens_neither_in_the_other_direction_nor_on_another_connection():
    client, server = pair()
    with pytest.raises(Unopened):
        client.open(client.seal(b"mine"))  # reflected back to its sender
    for other in (pair(server_nonce=b"t" * 16)[1], pair(cluster="other")[1], pair(key=B)[1]):
        with pytest.raises(Unopened):
            other.open(client.seal(b"x"))


def test_once_its_key_is_removed_a_connection_neither_seals_nor_opens():
    keyring = Keyring([A, B])
    client, server = pair(keyring, key=B)
    sealed = client.seal(b"before")
    keyring.remove(B)
    for act in (lambda: client.seal(b"after"), lambda: server.open(sealed)):
        with pytest.raises(Unopened):
            act()
