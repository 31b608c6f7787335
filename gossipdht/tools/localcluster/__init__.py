"""A cluster of local ``twistd`` nodes on loopback: starting, joining and measuring it.

The command line (``python -m gossipdht.tools.localcluster run|measure|outage``) is in ``__main__``;
these functions are also what the multi-process tests use.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from gossipdht.tools.nodeprocess import NodeProcess, free_port

POLL = 0.02
#: The ``data`` counters of ``GET /dht/stats`` that count records moved between nodes.
MOVED = ("keys_repaired", "keys_handed_off", "keys_dropped", "hints_stored", "hints_delivered")
#: Periodic rebalance rounds leave out writes this recent (``rebalance.IN_FLIGHT_SECONDS``).
IN_FLIGHT = 5.0
BULK_KEYS = 1000


def peers(node: NodeProcess) -> list[str]:
    try:
        status, _, body = node.request("GET", "/dht/peers", timeout=2.0)
    except OSError:
        return []
    return body.decode().splitlines() if status == 200 else []


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition`` held; raises TimeoutError after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not reached within {timeout} s")
        time.sleep(POLL)
    return time.monotonic() - start


def join(node: NodeProcess, seed: NodeProcess, timeout: float = 30) -> None:
    """``POST /dht/join``, which answers once the node holds its share of the data.

    A node restarted on a data directory of its own rejoins the members it knew at
    start-up, and meanwhile answers 409 to another join: it is asked again until then."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = node.request("POST", "/dht/join", f"{seed.host}:{seed.port}".encode(), timeout=timeout)
        if status == 409 and b"already in progress" in body and time.monotonic() < deadline:
            time.sleep(POLL)
            continue
        if status != 200:
            raise RuntimeError(f"join of {node.port} through {seed.port}: {status} {body.decode().strip()}")
        return


def start_nodes(directory: str, count: int, args: Sequence[str], first_port: int = 0) -> list[NodeProcess]:
    nodes = []
    for i in range(count):
        port = first_port + i if first_port else free_port()
        nodes.append(NodeProcess(os.path.join(directory, f"node-{i + 1}"), port=port).start(*args))
    return nodes


def measure(count: int, directory: str, args: Sequence[str] = ()) -> dict:
    nodes = start_nodes(directory, count, ["--storage", "memory", *args])
    try:
        names = [f"127.0.0.1:{n.port}" for n in nodes]
        started = time.monotonic()
        for node in nodes[1:]:
            join(node, nodes[0])
        wait_for(lambda: all(sorted(peers(n)) == sorted(names) for n in nodes), 30)
        joined = time.monotonic() - started

        victim, survivors = nodes[-1], nodes[:-1]
        victim.kill9()
        gone = wait_for(lambda: all(names[-1] not in peers(n) for n in survivors), 60)

        started = time.monotonic()
        victim.start("--storage", "memory", *args, "--join", f"127.0.0.1:{nodes[0].port}")
        back = wait_for(lambda: all(sorted(peers(n)) == sorted(names) for n in nodes), 30)
        return {
            "nodes": count,
            "join_all_listed_seconds": round(joined, 2),
            "kill9_unlisted_seconds": round(gone, 2),
            "restart_listed_seconds": round(time.monotonic() - started, 2),
            "restart_listed_after_health_seconds": round(back, 2),
        }
    finally:
        for node in nodes:
            node.stop()


def write_keys(nodes: Sequence[NodeProcess], count: int) -> None:
    """``count`` keys through bulk writes (``POST /db``, TSV), the nodes taking turns."""
    for number, first in enumerate(range(0, count, BULK_KEYS)):
        body = "".join(f"key-{i:07d}\tvalue-{i}\n" for i in range(first, min(first + BULK_KEYS, count))).encode()
        node = nodes[number % len(nodes)]
        status, _, answer = node.request("POST", "/db", body, {"Content-Type": "text/tab-separated-values"}, 60)
        if status != 200:
            raise RuntimeError(f"bulk write through {node.port}: {status} {answer.decode().strip()[:500]}")


def stats(nodes: Sequence[NodeProcess], timeout: float = 5) -> list[dict]:
    """Each node's ``GET /dht/stats``."""
    out = []
    for node in nodes:
        status, _, body = node.request("GET", "/dht/stats", timeout=timeout)
        if status != 200:
            raise RuntimeError(f"GET /dht/stats of {node.port}: {status}")
        out.append(json.loads(body))
    return out


def data_stats(nodes: Sequence[NodeProcess]) -> list[dict[str, int]]:
    """Each node's ``data`` counters from ``GET /dht/stats``."""
    return [s["data"] for s in stats(nodes)]


def settle(nodes: Sequence[NodeProcess], rounds: Sequence[int], still: float, timeout: float) -> list[dict]:
    """The counters once every node ran ``rounds`` rebalance rounds and none changed for ``still`` s."""
    start = changed = time.monotonic()
    seen = data_stats(nodes)
    while time.monotonic() - changed < still or any(s["rebalance_rounds"] < r for s, r in zip(seen, rounds)):
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"the cluster did not settle within {timeout} s: {seen}")
        time.sleep(0.1)
        now = data_stats(nodes)
        if now != seen:
            changed, seen = time.monotonic(), now
    return seen


def outage(count: int, keys: int, down: float, directory: str, args: Sequence[str] = (),
           replicas: int = 3, interval: float = 30) -> dict:
    """Records moved by a ``kill -9`` of one node for ``down`` s and its restart on its disk."""
    nodes = start_nodes(directory, count, args)
    try:
        names = [f"127.0.0.1:{n.port}" for n in nodes]
        for node in nodes[1:]:
            join(node, nodes[0], timeout=120)
        wait_for(lambda: all(sorted(peers(n)) == sorted(names) for n in nodes), 30)
        started = time.monotonic()
        write_keys(nodes, keys)
        loaded = time.monotonic() - started
        # The baseline once a periodic round compared the load's writes on every node.
        time.sleep(IN_FLIGHT)
        deadline = 3 * interval + 60
        before = settle(nodes, [s["rebalance_rounds"] + 1 for s in data_stats(nodes)], 2.0, deadline)

        victim, survivors = nodes[-1], nodes[:-1]
        killed = time.monotonic()
        victim.kill9()
        time.sleep(down)
        rounds = [s["rebalance_rounds"] + 2 for s in data_stats(survivors)] + [2]
        restarted = time.monotonic()
        victim.start(*args)
        wait_for(lambda: all(sorted(peers(n)) == sorted(names) for n in nodes), 60)
        listed = time.monotonic()
        after = settle(nodes, rounds, 2.0, deadline)
        delta = {c: sum(a[c] - b[c] for a, b in zip(after, before[:-1])) + after[-1][c] for c in MOVED}
        return {
            "nodes": count, "keys": keys, "replicas_total": replicas * keys, "down_seconds": down, **delta,
            "of_which_restarted_node": {c: after[-1][c] for c in MOVED},
            "load_seconds": round(loaded, 2),
            "restart_listed_seconds": round(listed - restarted, 2),
            "seconds": round(time.monotonic() - killed, 2),
        }
    finally:
        for node in nodes:
            node.stop()


def sleep_lateness(done: threading.Event, interval: float = 0.1) -> float:
    """The baseline of ``join_lag``: sleeps of ``interval`` until ``done``, and the largest
    lateness of one, in seconds; what the machine's scheduler alone costs a timer while
    the nodes are busy."""
    worst = 0.0
    while not done.is_set():
        due = time.monotonic() + interval
        time.sleep(interval)
        worst = max(worst, time.monotonic() - due)
    return worst


def join_lag(count: int, keys: int, directory: str, args: Sequence[str] = ()) -> dict:
    """How late the reactors ran while one more node joined ``count`` nodes holding
    ``keys`` keys: the largest timer lag and Lifeguard health score each node showed,
    and the largest lateness of an idle thread's sleep meanwhile (the baseline)."""
    nodes = start_nodes(directory, count + 1, args)
    try:
        for node in nodes[1:count]:
            join(node, nodes[0], timeout=120)
        started = time.monotonic()
        write_keys(nodes[:count], keys)
        loaded = time.monotonic() - started
        settle(nodes[:count], [0] * count, 2.0, 600)
        worst = {"lag_max_ms": [0.0] * len(nodes), "local_health": [0] * len(nodes)}
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                for i, s in enumerate(stats(nodes, timeout=60)):
                    worst["lag_max_ms"][i] = max(worst["lag_max_ms"][i], s["reactor"]["lag_max_ms"])
                    worst["local_health"][i] = max(worst["local_health"][i], s["gossip"]["local_health"])
                done.wait(0.5)
        watcher = threading.Thread(target=watch, daemon=True)
        # The load's own lag is not the join's: the window of ``lag_max_ms`` is a minute.
        time.sleep(61)
        watcher.start()
        with ThreadPoolExecutor(1) as pool:
            idle = pool.submit(sleep_lateness, done)
            started = time.monotonic()
            join(nodes[count], nodes[0], timeout=1800)
            joined = time.monotonic() - started
            done.set()
        watcher.join()
        return {"nodes": count, "keys": keys, "load_seconds": round(loaded, 1),
                "join_seconds": round(joined, 1), **worst,
                "idle_thread_lag_max_ms": round(idle.result() * 1000, 1)}
    finally:
        for node in nodes:
            node.stop()
