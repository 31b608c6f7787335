"""The gossip codec: round trips, and garbage refused with WireError only."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossipdht.membership.wire import (
    KINDS,
    MAX_DATAGRAM,
    Ack,
    Alive,
    Dead,
    Left,
    Nack,
    Ping,
    PingReq,
    Suspect,
    WireError,
    pack_datagram,
    pack_message,
    pack_state,
    unpack_datagram,
    unpack_state,
)

names = st.text(min_size=1, max_size=40)
ints = st.integers(0, (1 << 63) - 1)
messages = st.one_of(
    st.builds(Ping, ints, names), st.builds(Ack, ints, ints), st.builds(PingReq, ints, names, names, ints),
    st.builds(Nack, ints), st.builds(Alive, names, ints, names, ints, ints),
    st.builds(Suspect, names, ints, names), st.builds(Dead, names, ints, names), st.builds(Left, names, ints),
)


@given(names, ints, st.lists(messages, max_size=8))
def test_datagrams_round_trip(sender, checksum, batch):
    data = pack_datagram(sender, checksum, [pack_message(m) for m in batch])
    if len(data) <= MAX_DATAGRAM:
        assert unpack_datagram(data) == (sender, checksum, batch)


@given(names, st.lists(messages, max_size=50))
def test_state_round_trips(sender, state):
    assert unpack_state(pack_state(sender, state)) == (sender, state)


@given(st.binary(max_size=200))
def test_garbage_raises_wire_error_only(data):
    for decode in (unpack_datagram, unpack_state):
        try:
            decode(data)
        except WireError:
            pass


@given(st.lists(messages, min_size=1, max_size=5), st.data())
def test_mutated_datagrams_raise_wire_error_only(batch, data):
    packed = bytearray(pack_datagram("node", 7, [pack_message(m) for m in batch]))
    for _ in range(data.draw(st.integers(1, 4))):
        packed[data.draw(st.integers(0, len(packed) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(packed)))
    try:
        unpack_datagram(bytes(packed[:cut]))
    except WireError:
        pass


@pytest.mark.parametrize("data", [
    b"", b"\x02" + pack_datagram("a", 1, [])[1:],  # another version
    pack_datagram("a", 1, [b"\x93\x00\x01"]),  # Ping with a missing field
    pack_datagram("a", 1, [b"\x92\x63\x01"]),  # unknown kind 99
    pack_datagram("a", 1, [pack_message(Ack(1))])[:-1],  # truncated
    pack_datagram("", 1, []),  # empty sender
    pack_datagram("a", 1, [b"\x96\x04\xa1x\xff\xa1h\x01\x01"]),  # Alive with incarnation -1
])
def test_malformed(data):
    with pytest.raises(WireError):
        unpack_datagram(data)


def test_oversized_datagram_is_refused():
    big = pack_datagram("a", 1, [pack_message(Alive("x" * 50, 1, "h", 1, 1))] * 40)
    assert len(big) > MAX_DATAGRAM
    with pytest.raises(WireError, match="over"):
        unpack_datagram(big)


def test_every_kind_has_a_code():
    assert len(KINDS) == len(set(KINDS)) == 8
