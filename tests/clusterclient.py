"""Talking to a cluster of real node processes from tests: keep-alive clients on a
pool of threads, and the checks the multi-process scenarios share."""

from __future__ import annotations

import http.client
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable
from urllib.parse import quote

from gossipdht.core.ring import Ring
from gossipdht.tools.localcluster import join

THREADS = 16
FAST = ("--anti-entropy-interval", "5")


class Clients:
    """One keep-alive connection per thread and node."""

    def __init__(self, timeout: float = 30) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def request(self, node, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        connections = self._local.__dict__.setdefault("connections", {})
        for attempt in (1, 2):
            connection = connections.get((node.host, node.port))
            if connection is None:
                connection = connections[node.host, node.port] = http.client.HTTPConnection(
                    node.host, node.port, timeout=self.timeout)
            try:
                connection.request(method, path, body=body)
                response = connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                connections[node.host, node.port] = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def parallel(function, items) -> list:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(function, items))


def path(key: str, query: str = "") -> str:
    return "/db/" + quote(key, safe="") + query


def name(node) -> str:
    return f"{node.host}:{node.port}"


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


def owners(nodes, n: int = 3) -> Callable[[str], set[str]]:
    """The owners of a key on the ring of these nodes, as every node computes them."""
    ring = Ring(map(name, nodes))
    return lambda key: set(ring.preference_list(key, n))


def holders(clients, nodes, keys) -> dict[str, set[str]]:
    """The names of the nodes that store each key."""
    found: dict[str, set[str]] = {key: set() for key in keys}
    for node in nodes:
        for key in listing(clients, node, "replica"):
            found.setdefault(key, set()).add(name(node))
    return found


def missing_copies(clients, nodes, keys, n: int = 3) -> list[str]:
    """Keys that some of their ``n`` owners do not store."""
    found, owners_of = holders(clients, nodes, keys), owners(nodes, n)
    return [key for key in keys if not owners_of(key) <= found[key]]


def placement_errors(clients, nodes, keys, n: int = 3) -> list[str]:
    """Keys not stored on exactly their ``n`` owners."""
    found, owners_of = holders(clients, nodes, keys), owners(nodes, n)
    return [key for key in keys if found[key] != owners_of(key)]


class Reader:
    """Reads existing keys over and over in a thread of its own, through the nodes it is
    told, and keeps every read that did not return the value: a 404, a 5xx, no answer.

    ``watch(view)`` replaces what it reads: a list of (nodes, items)."""

    def __init__(self) -> None:
        self._clients = Clients()
        self._view: list[tuple[list, dict[str, str]]] = []
        self._stop = threading.Event()
        self.reads = 0
        self.failures: list[tuple[int, str, object]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Reader":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def watch(self, view: list[tuple[list, dict[str, str]]]) -> None:
        self._view = view

    def _run(self) -> None:
        while not self._stop.is_set():
            view = self._view
            jobs = [(node, key, value) for nodes, items in view for node in nodes for key, value in items.items()]
            if not jobs:
                self._stop.wait(0.01)
                continue
            random.shuffle(jobs)
            for node, key, value in jobs[:200]:
                try:
                    status, body = self._clients.request(node, "GET", path(key))
                except OSError as e:
                    status, body = e, b""
                self.reads += 1
                if status != 200 or body != value.encode():
                    self.failures.append((node.port, key, status))
