"""The client's pure parts: error scores that decay as Riak's do, and where a request goes."""

from __future__ import annotations

import random

import pytest

from gossipdht.client.routing import REFRESH_SECONDS, ClusterView, Member, Router
from gossipdht.client.scores import HALF_LIFE, HEALTHY, DecayingScore, ErrorScores
from gossipdht.core.address import Address
from gossipdht.core.ring import DEFAULT_VNODES, Ring


def test_a_score_halves_every_half_life_and_adds_up():
    score = DecayingScore()
    score.add(1.0, now=100.0)
    assert score.value(100.0) == 1.0
    assert score.value(100.0 + HALF_LIFE) == pytest.approx(0.5)
    assert score.value(100.0 + 3 * HALF_LIFE) == pytest.approx(0.125)
    score.add(1.0, now=100.0 + HALF_LIFE)
    assert score.value(100.0 + 2 * HALF_LIFE) == pytest.approx(0.75)
    assert score.value(50.0) == pytest.approx(1.5)  # a clock that went back decays nothing


def test_a_node_that_failed_once_is_unhealthy_until_its_score_decays_under_the_threshold():
    scores = ErrorScores()
    scores.failed("a", now=0.0)
    assert not scores.healthy("a", 0.0) and scores.healthy("b", 0.0)
    # 1 halves to under 0.1 after log2(10) half-lives, 33.2 s.
    assert not scores.healthy("a", 33.0) and scores.healthy("a", 33.5)
    assert HEALTHY == 0.1


def member(i: int, state: str = "alive", in_ring: bool = True) -> Member:
    return Member(f"n{i}", Address("127.0.0.1", 9000 + i), state, in_ring)


def router(members: list[Member], replicas: int = 2) -> Router:
    routed = Router([Address("127.0.0.1", 9000)], random.Random(1))
    view = ClusterView(members, DEFAULT_VNODES, replicas)
    routed.install(view, view.checksum)
    return routed


def test_a_key_goes_to_its_first_owner_then_the_other_owners_then_any_live_member():
    members = [member(i) for i in range(5)]
    routed = router(members, replicas=3)
    ring = Ring([m.name for m in members])
    for key in (f"key-{i}" for i in range(200)):
        owners = [Address("127.0.0.1", 9000 + int(name[1:])) for name in ring.preference_list(key, 3)]
        targets = routed.targets(key, now=0.0)
        assert targets[:3] == owners
        assert set(targets[3:]) == {m.address for m in members if m.address not in owners} and len(targets) == 5


def test_an_owner_that_failed_comes_after_the_healthy_owners_until_its_score_decays():
    routed = router([member(i) for i in range(3)])
    first, second, other = routed.targets("k", now=0.0)
    routed.failed(first, now=0.0)
    assert routed.targets("k", now=1.0) == [second, other, first]  # healthy non-owners go before it
    routed.failed(second, now=1.0)
    assert routed.targets("k", now=2.0) == [other, first, second]  # the least unhealthy first
    assert routed.targets("k", now=60.0) == [first, second, other]


def test_dead_and_left_members_are_skipped_and_a_member_down_keeps_its_place_on_the_ring():
    members = [member(0), member(1, "dead"), member(2, "left", in_ring=False), member(3)]
    routed = router(members, replicas=2)
    assert routed.view.ring.members == ["n0", "n1", "n3"]
    for key in (f"key-{i}" for i in range(50)):
        targets = routed.targets(key, now=0.0)
        assert set(targets) == {member(0).address, member(3).address}
        assert [m.name for m in routed.view.owners(key)] == routed.view.ring.preference_list(key, 2)


def test_before_the_first_view_the_seeds_are_tried_and_a_keyless_request_goes_to_any_live_member():
    seeds = [Address("10.0.0.1", 1), Address("10.0.0.2", 2)]
    routed = Router(seeds, random.Random(3))
    assert routed.refresh_due(0.0) and set(routed.targets("k", 0.0)) == set(seeds)
    view = ClusterView([member(0), member(1)], DEFAULT_VNODES, 2)
    routed.install(view, view.checksum)
    assert set(routed.targets(None, 0.0)[:2]) == {member(0).address, member(1).address}
    assert routed.targets(None, 0.0)[2:] != [] and set(routed.targets(None, 0.0)[2:]) == set(seeds)


def test_another_ring_checksum_or_a_failure_asks_for_a_new_view_at_most_once_a_debounce():
    routed = router([member(0), member(1)])
    checksum = routed.view.checksum
    routed.answered(checksum)
    routed.answered(None)  # a node that sends none changes nothing
    assert not routed.refresh_due(0.0)
    routed.answered("another")
    assert routed.refresh_due(0.0)
    routed.refreshing(now=10.0)
    assert not routed.refresh_due(10.0 + REFRESH_SECONDS / 2)  # the reading under way, or just done
    assert routed.refresh_due(10.0 + REFRESH_SECONDS)  # still stale: nothing new was installed
    view = ClusterView([member(0), member(1), member(2)], DEFAULT_VNODES, 2)
    routed.install(view, view.checksum)
    assert not routed.refresh_due(100.0)
    routed.failed(member(2).address, now=100.0)
    assert routed.refresh_due(100.0)
    routed.install(view, "the node's ring moved on meanwhile")
    assert routed.stale


def test_bulk_keys_are_split_by_the_node_each_goes_to_first():
    routed = router([member(i) for i in range(3)])
    keys = [f"key-{i}" for i in range(300)]
    groups = routed.split(keys, now=0.0)
    assert sorted(k for group in groups for k in group) == sorted(keys) and len(groups) == 3
    for group in groups:
        assert len({routed.targets(key, 0.0)[0] for key in group}) == 1


def test_a_view_is_read_from_the_nodes_json_and_refuses_what_is_not():
    view = ClusterView.from_answers(
        [{"name": "a", "address": "127.0.0.1", "port": 1, "state": "alive", "in_ring": True, "incarnation": 3},
         {"name": "b", "address": "::1", "port": 2, "state": "suspect", "in_ring": True}],
        {"checksum": "x", "vnodes": 16, "replicas": 2, "members": []})
    assert view.ring.members == ["a", "b"] and view.ring.vnodes == 16 and view.replicas == 2
    assert view.checksum == Ring(["a", "b"], 16).checksum
    with pytest.raises(ValueError, match="not a member list and ring"):
        ClusterView.from_answers([{"name": "a"}], {"vnodes": 16, "replicas": 2})
