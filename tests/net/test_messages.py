"""The internal messages between nodes: every pack/unpack pair round-trips, and a body
that is not well formed raises BadMessage instead of reaching the store."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossipdht.core.hashing import RING_SIZE
from gossipdht.core.hlc import TIMESTAMP_LIMIT, Version
from gossipdht.net.messages import (
    BadMessage,
    pack_digests,
    pack_keys,
    pack_records,
    pack_scan,
    pack_versions,
    pack_writes,
    unpack_digests,
    unpack_keys,
    unpack_records,
    unpack_scan,
    unpack_versions,
    unpack_writes,
)
from gossipdht.storage import Record

versions = st.builds(Version, st.integers(0, TIMESTAMP_LIMIT - 1), st.text(max_size=8))
records = st.builds(Record, versions, st.binary(max_size=64), st.text(max_size=16), st.booleans())
keys = st.text(min_size=1, max_size=16)
tokens = st.integers(0, RING_SIZE - 1)
ranges = st.lists(st.tuples(tokens, tokens).map(sorted).map(lambda pair: (pair[0], pair[1] + 1)), max_size=5)


@given(st.lists(st.tuples(keys, records, st.none() | st.text(max_size=8)), max_size=10))
def test_writes_round_trip_with_their_hints(writes):
    assert unpack_writes(pack_writes(writes)) == writes


@given(st.lists(keys, max_size=10))
def test_keys_round_trip(some_keys):
    assert unpack_keys(pack_keys(some_keys)) == some_keys


@given(st.lists(st.none() | st.tuples(keys, records), max_size=10))
def test_records_round_trip_with_the_missing_ones(answers):
    assert unpack_records(pack_records(answers)) == answers


@given(ranges, st.none() | st.integers(0, TIMESTAMP_LIMIT))
def test_scans_round_trip_up_to_the_end_of_the_ring(scan_ranges, before):
    assert unpack_scan(pack_scan(scan_ranges, before)) == (scan_ranges, before)
    assert unpack_scan(pack_scan([(0, RING_SIZE)], None)) == ([(0, RING_SIZE)], None)


@given(st.lists(st.tuples(st.integers(0, 1 << 40), st.integers(0, (1 << 64) - 1)), max_size=10))
def test_digests_round_trip_and_their_number_is_checked(digests):
    assert unpack_digests(pack_digests(digests), len(digests)) == digests
    with pytest.raises(BadMessage, match=f"expected {len(digests) + 1} digests"):
        unpack_digests(pack_digests(digests), len(digests) + 1)


@given(st.lists(st.tuples(keys, versions), max_size=10))
def test_versions_round_trip(pairs):
    assert unpack_versions(pack_versions(pairs)) == pairs


def packed(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


@pytest.mark.parametrize("unpack, body, message", [
    (unpack_writes, b"\xc1", "not msgpack"),
    (unpack_writes, packed({"a": 1}), "the body is not a list"),
    (unpack_writes, packed([["k", 1, "n", False, "t"]]), "not a list of 6 fields"),
    (unpack_writes, packed([["k", -1, "n", False, "t", b"v"]]), "wrong type"),
    (unpack_writes, packed([["k", TIMESTAMP_LIMIT, "n", False, "t", b"v"]]), "wrong type"),
    (unpack_writes, packed([["k", 1, "n", False, "t", "not bytes"]]), "wrong type"),
    (unpack_writes, packed([["k", 1, "n", False, "t", b"v", 7]]), "hint target is not a string"),
    (unpack_keys, packed(["a", 1]), "a key is not a string"),
    (unpack_records, packed([["k"]]), "not a list of 6 fields"),
    (unpack_scan, packed([None]), "a scan is not"),
    (unpack_scan, packed([-1, []]), "a scan is not"),
    (unpack_scan, packed([None, [[5, 4]]]), "a range is not"),
    (unpack_scan, packed([None, [[-1, 4]]]), "a range is not"),
    (unpack_scan, packed([None, [[0, "end"]]]), "a range is not"),
    (unpack_versions, packed([["k", 1]]), "a version is not"),
])
def test_malformed_bodies_raise_bad_message_naming_what_is_wrong(unpack, body, message):
    with pytest.raises(BadMessage, match=message):
        unpack(body)
