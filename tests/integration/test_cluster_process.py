"""Membership between real ``twistd gossipdht`` processes on loopback."""

from __future__ import annotations

import json

from gossipdht.tools.localcluster import join, peers, wait_for
from gossipdht.tools.nodeprocess import free_port

DEADLINE = 30.0


def name(node):
    return f"127.0.0.1:{node.port}"


def states(node):
    return [(m["name"], m["state"]) for m in json.loads(node.request("GET", "/dht/members")[2])]


def test_join_kill9_and_restart(node_factory):
    nodes = [node_factory("--storage", "memory") for _ in range(5)]
    for node in nodes[1:]:
        join(node, nodes[0])  # answers only when everyone lists the newcomer
        assert name(node) in peers(nodes[0])
    everyone = sorted(map(name, nodes))
    wait_for(lambda: all(sorted(peers(n)) == everyone for n in nodes), DEADLINE)
    assert all(peers(n)[0] == name(n) for n in nodes)

    victim, survivors = nodes[2], nodes[:2] + nodes[3:]
    victim.kill9()
    wait_for(lambda: all(name(victim) not in peers(n) for n in survivors), DEADLINE)
    status, _, body = survivors[0].request("GET", "/dht/members")
    assert b'"dead"' in body

    victim.start("--storage", "memory", "--join", f"127.0.0.1:{nodes[0].port}")
    wait_for(lambda: all(sorted(peers(n)) == everyone for n in nodes), DEADLINE)


def test_startup_join_retries_until_a_seed_answers(node_factory):
    seed_port = free_port()
    joiner = node_factory("--storage", "memory", "--join", f"127.0.0.1:{seed_port}")
    wait_for(lambda: joiner.log().count("retrying in") >= 2, DEADLINE)  # each failed try is logged
    seed = node_factory("--storage", "memory", port=seed_port)
    wait_for(lambda: sorted(peers(seed)) == sorted([name(seed), name(joiner)]), DEADLINE)
    # the joiner logs its success once its own check that everyone lists it has passed
    wait_for(lambda: "joined a cluster of 2 members" in joiner.log(), DEADLINE)


def test_graceful_leave_of_a_process(node_factory):
    a, b, c = (node_factory("--storage", "memory") for _ in range(3))
    join(b, a)
    join(c, a)
    status, _, body = c.request("GET", "/dht/leave")
    assert status == 200, body
    assert peers(c) == [name(c)]
    assert name(c) not in peers(a) and name(c) not in peers(b)


def test_a_restarted_node_rejoins_the_members_it_knew(node_factory):
    a, b = node_factory(), node_factory()  # sqlite: durable nodes keep a member snapshot
    join(b, a)
    wait_for(lambda: (b.data_dir / "members.json").exists(), DEADLINE)
    b.kill9()
    b.start()  # no --join
    assert "rejoining the 1 members this node knew" in b.log()
    wait_for(lambda: sorted(peers(a)) == sorted(peers(b)) == sorted([name(a), name(b)]), DEADLINE)


def test_the_last_node_standing_rejoins_the_one_that_died_first(node_factory):
    a, b = node_factory(), node_factory()
    join(b, a)
    a.kill9()
    wait_for(lambda: dict(states(b)).get(name(a)) == "dead", DEADLINE)
    b.stop()  # which writes its snapshot at once
    a.start("--storage", "memory")  # back first, with no memory of b
    b.start()
    assert "rejoining the 1 members this node knew" in b.log()
    wait_for(lambda: sorted(peers(a)) == sorted(peers(b)) == sorted([name(a), name(b)]), DEADLINE)


def test_after_a_graceful_leave_a_restart_stays_alone(node_factory):
    a, b = node_factory(), node_factory()
    join(b, a)
    status, _, _ = b.request("GET", "/dht/leave")
    assert status == 200
    b.stop()
    b.start()
    assert "rejoining" not in b.log()
    assert peers(b) == [name(b)]
