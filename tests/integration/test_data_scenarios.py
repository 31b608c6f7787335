"""The data-distribution scenarios, through the real HTTP API of real ``twistd`` nodes.

Each test starts its own cluster of node processes on loopback.  Requests run on
keep-alive connections from a pool of threads, so checking thousands of keys stays
quick; every check polls with a deadline rather than sleeping.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

from clusterclient import (
    FAST,
    Clients,
    data_stats,
    joined,
    listing,
    name,
    owners,
    parallel,
    path,
    placement_errors,
    put_all,
    unreadable,
)

from gossipdht.tools.localcluster import join, peers, wait_for


def test_primary_listings_name_every_key_once_and_stay_balanced(node_factory):
    clients = Clients()
    nodes = joined(node_factory, 10)
    items = {f"key-{i:04d}": f"v{i}" for i in range(1000)}
    put_all(clients, nodes, items)
    listings = [listing(clients, node) for node in nodes]
    every = [key for keys in listings for key in keys]
    assert sorted(every) == sorted(items)  # each key exactly once
    assert all(40 <= len(keys) <= 200 for keys in listings), [len(keys) for keys in listings]
    replicas = [listing(clients, node, "replica") for node in nodes]
    assert sum(map(len, replicas)) == 3 * len(items)


def test_a_node_leaves_with_its_data_handed_off_and_comes_back(node_factory):
    clients = Clients()
    nodes = joined(node_factory, 10)
    items = {f"key-{i:03d}": f"v{i}" for i in range(500)}
    put_all(clients, nodes, items)
    leaver, others = nodes[3], nodes[:3] + nodes[4:]
    owners_of = owners(nodes)
    owned = {key for key in items if name(leaver) in owners_of(key)}
    status, body = clients.request(leaver, "GET", "/dht/leave")
    assert status == 200, body
    assert peers(leaver) == [name(leaver)]
    for node in others:
        assert sorted(peers(node)) == sorted(map(name, others))
    assert unreadable(clients, others, items) == []
    # Alone, the leaver still serves what it held: at least every key it owned.
    held = set(listing(clients, leaver, "replica"))
    assert owned and owned <= held
    assert unreadable(clients, [leaver], {key: items[key] for key in held}) == []
    join(leaver, others[0])
    assert unreadable(clients, nodes, items) == []


def test_kill9_during_writes_loses_no_acknowledged_write(node_factory):
    clients = Clients()
    nodes = joined(node_factory, 5, *FAST)
    victim, writers = nodes[2], nodes[:2] + nodes[3:]
    keys = [f"key-{i:05d}" for i in range(10_000)]
    acknowledged: dict[str, str] = {}
    written = threading.Semaphore(0)

    def put(key):
        try:
            status, _ = clients.request(random.choice(writers), "PUT", path(key), key.encode())
        except OSError:
            return
        if status == 204:
            acknowledged[key] = key
        written.release()

    killer = threading.Thread(target=lambda: ([written.acquire() for _ in range(2000)], victim.kill9()))
    killer.start()
    parallel(put, keys)
    killer.join()
    assert not victim.running
    assert len(acknowledged) > 9000  # the survivors kept taking writes
    assert unreadable(clients, writers, acknowledged, "?r=2", each_node=False) == []

    victim.start(*FAST)  # its old disk; it rejoins the members it knew
    wait_for(lambda: all(sorted(peers(n)) == sorted(map(name, nodes)) for n in nodes), 30)
    assert unreadable(clients, nodes, acknowledged, "?r=2", each_node=False) == []
    wait_for(lambda: placement_errors(clients, nodes, list(acknowledged)) == [], 60)


def test_a_stopped_replica_catches_up_and_a_deletion_sticks(node_factory):
    clients = Clients()
    nodes = joined(node_factory, 5, *FAST)
    victim = nodes[1]
    owners_of = owners(nodes)
    doomed = next(f"doomed-{i}" for i in range(1000) if name(victim) in owners_of(f"doomed-{i}"))
    status, _ = clients.request(nodes[0], "PUT", path(doomed), b"to be deleted")
    assert status == 204
    others = [n for n in nodes if n is not victim]
    missed: dict[str, str] = {}
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 20
        batch = 0
        while time.monotonic() < deadline:
            items = {f"missed-{batch}-{i}": f"v{batch}.{i}" for i in range(50)}
            put_all(clients, others, items)
            missed.update(items)
            if batch == 3:
                status, _ = clients.request(others[0], "DELETE", path(doomed))
                assert status == 204
            batch += 1
            time.sleep(0.5)  # pacing the writes over the 20 s, not waiting for an event
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    mine = {key for key in missed if name(victim) in owners_of(key)}
    assert mine

    def caught_up():
        return mine <= set(listing(clients, victim, "replica"))
    wait_for(caught_up, 60)
    # A full anti-entropy round after the victim came back must not bring the key back.
    rounds = data_stats(clients, victim)["rebalance_rounds"]
    wait_for(lambda: data_stats(clients, victim)["rebalance_rounds"] >= rounds + 2, 30)
    for node in nodes:
        status, _ = clients.request(node, "GET", path(doomed, "?r=3"))
        assert status == 404, name(node)
        assert doomed not in listing(clients, node, "replica")
    assert unreadable(clients, nodes, missed, each_node=False) == []
