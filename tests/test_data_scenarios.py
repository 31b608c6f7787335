"""The data-distribution scenarios, through the real HTTP API of real ``twistd`` nodes.

Each test starts its own cluster of node processes on loopback.  Requests run on
keep-alive connections from a pool of threads, so checking thousands of keys stays
quick; every check polls with a deadline rather than sleeping.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable
from urllib.parse import quote


from gossipdht.localcluster import join, peers, wait_for
from gossipdht.ring import Ring

THREADS = 16
FAST = ("--anti-entropy-interval", "5")


class Clients:
    """One keep-alive connection per thread and node."""

    def __init__(self) -> None:
        self._local = threading.local()

    def request(self, node, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        connections = self._local.__dict__.setdefault("connections", {})
        for attempt in (1, 2):
            connection = connections.get(node.port)
            if connection is None:
                connection = connections[node.port] = http.client.HTTPConnection(node.host, node.port, timeout=30)
            try:
                connection.request(method, path, body=body)
                response = connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                connections[node.port] = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def parallel(function, items) -> list:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(function, items))


def path(key: str, query: str = "") -> str:
    return "/db/" + quote(key, safe="") + query


def name(node) -> str:
    return f"127.0.0.1:{node.port}"


def put_all(clients, nodes, items: dict[str, str]) -> None:
    def put(item):
        key, value = item
        status, body = clients.request(random.choice(nodes), "PUT", path(key), value.encode())
        assert status == 204, (key, status, body)
    parallel(put, items.items())


def unreadable(clients, nodes, items: dict[str, str], query: str = "", each_node: bool = True) -> list:
    """(node port, key, status) of the reads that do not return the value: every key
    through every node, or through one node picked at random."""
    def read(job):
        node, key = job
        status, body = clients.request(node, "GET", path(key, query))
        return None if status == 200 and body == items[key].encode() else (node.port, key, status)
    jobs = [(n, k) for n in nodes for k in items] if each_node else [(random.choice(nodes), k) for k in items]
    return [bad for bad in parallel(read, jobs) if bad]


def listing(clients, node, scope: str = "primary") -> list[str]:
    status, body = clients.request(node, "GET", f"/db?format=json&scope={scope}")
    assert status == 200
    return json.loads(body)


def data_stats(clients, node) -> dict:
    return json.loads(clients.request(node, "GET", "/dht/stats")[1])["data"]


def start(node_factory, count: int, *args: str) -> list:
    return [node_factory(*args) for _ in range(count)]


def joined(node_factory, count: int, *args: str) -> list:
    nodes = start(node_factory, count, *args)
    for node in nodes[1:]:
        join(node, nodes[0])
    return nodes


def test_ten_single_nodes_with_their_own_keys_join_one_by_one(node_factory):
    clients = Clients()
    nodes = start(node_factory, 10)
    own = [{f"node{i}/key{k}": f"value {i}.{k}" for k in range(100)} for i in range(10)]
    for node, items in zip(nodes, own):
        put_all(clients, [node], items)
    so_far = dict(own[0])
    for i in range(1, 10):
        join(nodes[i], nodes[i - 1])
        so_far.update(own[i])
        assert unreadable(clients, nodes[: i + 1], so_far) == [], f"after node {i} joined"
    everyone = sorted(map(name, nodes))
    for node in nodes:
        assert sorted(peers(node)) == everyone


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


def owners(nodes) -> Callable[[str], set[str]]:
    """The owners of a key on the ring of these nodes, as every node computes them."""
    ring = Ring(map(name, nodes))
    return lambda key: set(ring.preference_list(key, 3))


def placement_errors(clients, nodes, keys) -> list[str]:
    """Keys not stored on exactly their three owners."""
    holders: dict[str, set[str]] = {key: set() for key in keys}
    for node in nodes:
        for key in listing(clients, node, "replica"):
            holders.setdefault(key, set()).add(name(node))
    owners_of = owners(nodes)
    return [key for key in keys if holders[key] != owners_of(key)]


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
