"""The consistent-hash ring: deterministic, balanced, distinct replicas, small moves."""

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from gossipdht.core.ring import Ring

NODES = [f"127.0.0.1:{8000 + i}" for i in range(10)]


def test_same_members_in_any_order_give_the_same_ring():
    shuffled = NODES[:]
    random.Random(3).shuffle(shuffled)
    a, b = Ring(NODES), Ring(shuffled + NODES[:2])  # duplicates do not count
    assert a.checksum == b.checksum
    assert all(a.preference_list(f"k{i}", 3) == b.preference_list(f"k{i}", 3) for i in range(500))
    assert Ring(NODES[:9]).checksum != a.checksum


@given(st.text(), st.integers(1, 12))
def test_preference_lists_hold_distinct_members(key, n):
    owners = Ring(NODES, vnodes=64).preference_list(key, n)
    assert len(owners) == min(n, len(NODES)) == len(set(owners))


def test_balance_of_primaries_and_replicas_over_100000_keys():
    ring = Ring(NODES)
    rng = random.Random(11)
    primaries, replicas = Counter(), Counter()
    for _ in range(100_000):
        owners = ring.preference_list(f"key-{rng.getrandbits(64)}", 3)
        primaries[owners[0]] += 1
        replicas.update(owners)
    assert max(primaries.values()) <= 1.10 * 100_000 / 10
    assert max(replicas.values()) <= 1.10 * 300_000 / 10


def test_shares_cover_the_key_space():
    shares = Ring(NODES).shares()
    assert abs(sum(shares.values()) - 1) < 1e-9
    assert max(shares.values()) < 0.11


def test_replica_shares_count_every_copy_and_match_the_preference_lists():
    ring = Ring(NODES, vnodes=64)
    primary = ring.shares()
    assert all(abs(share - primary[name]) < 1e-12 for name, share in ring.replica_shares(1).items())
    copies = ring.replica_shares(3)
    assert abs(sum(copies.values()) - 3) < 1e-9
    counted = Counter(owner for i in range(20_000) for owner in ring.preference_list(f"key-{i}", 3))
    assert all(abs(counted[name] / 20_000 - copies[name]) < 0.02 for name in NODES)
    assert Ring(NODES[:2]).replica_shares(3) == dict.fromkeys(NODES[:2], 1.0)


def test_a_new_member_takes_only_its_share():
    before, after = Ring(NODES), Ring(NODES + ["127.0.0.1:9999"])
    keys = [f"key-{i}" for i in range(20_000)]
    moved = [k for k in keys if before.preference_list(k, 1) != after.preference_list(k, 1)]
    assert all(after.preference_list(k, 1) == ["127.0.0.1:9999"] for k in moved)
    assert len(moved) < 1.3 * len(keys) / 11


def test_empty_ring():
    assert Ring([]).preference_list("k", 3) == []


def test_ten_nodes_hold_100000_keys_within_ten_percent_of_the_mean():
    import random
    from collections import Counter

    ring = Ring([f"10.0.0.{i}:8080" for i in range(1, 11)])
    rng = random.Random(4)
    keys = [f"{rng.getrandbits(64):x}" for _ in range(100_000)]
    primaries, replicas = Counter(), Counter()
    for key in keys:
        owners = ring.preference_list(key, 3)
        assert len(set(owners)) == 3
        primaries[owners[0]] += 1
        replicas.update(owners)
    for counts in (primaries, replicas):
        mean = sum(counts.values()) / 10
        assert max(counts.values()) <= 1.10 * mean, counts


def test_placement_gives_every_token_the_preference_list_of_its_keys():
    ring = Ring(["a", "b", "c", "d"], vnodes=16)
    arcs = ring.placement(3)
    assert arcs[0][0] == 0 and arcs[-1][1] == 1 << 64
    assert all(a[1] == b[0] for a, b in zip(arcs, arcs[1:]))  # no gap, no overlap
    from bisect import bisect_right

    from gossipdht.core.hashing import token
    for key in map(str, range(500)):
        low, high, owners = arcs[bisect_right([a[0] for a in arcs], token(key)) - 1]
        assert low <= token(key) < high
        assert list(owners) == ring.preference_list(key, 3)


def test_slices_name_the_primary_owner_of_most_of_each_arc_in_proportion_to_the_shares():
    ring = Ring(["a", "b", "c", "d"])
    slices = ring.slices(720)
    assert len(slices) == 720 and set(slices) == set(ring.members)
    for name, share in ring.shares().items():
        assert abs(slices.count(name) / 720 - share) < 0.05
    assert ring.slices(720) is slices  # computed once per ring
    # An arc with a single token boundary in it goes to the owner of its larger part.
    two = Ring(["a", "b"], vnodes=1)
    assert two.slices(1) == [max(two.shares(), key=two.shares().get)]
    assert Ring(["a"]).slices(3) == ["a", "a", "a"] and Ring([]).slices(3) == []
