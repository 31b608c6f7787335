"""A cluster of local ``twistd`` nodes on loopback: starting, joining and measuring it.

The command line (``python -m gossipdht.localcluster run|measure``) is in ``__main__``;
these functions are also what the multi-process tests use.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Sequence

from gossipdht.nodeprocess import NodeProcess, free_port

POLL = 0.02


def peers(node: NodeProcess) -> list[str]:
    try:
        status, _, body = node.request("GET", "/dht/peers", timeout=2.0)
    except OSError:
        return []
    return body.decode().split("\r\n") if status == 200 else []


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition`` held; raises TimeoutError after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not reached within {timeout} s")
        time.sleep(POLL)
    return time.monotonic() - start


def join(node: NodeProcess, seed: NodeProcess, timeout: float = 30) -> None:
    """``POST /dht/join``, which answers once the node holds its share of the data."""
    status, _, body = node.request("POST", "/dht/join", f"127.0.0.1:{seed.port}".encode(), timeout=timeout)
    if status != 200:
        raise RuntimeError(f"join of {node.port} through {seed.port}: {status} {body.decode().strip()}")


def start_nodes(directory: str, count: int, args: Sequence[str], first_port: int = 0) -> list[NodeProcess]:
    nodes = []
    for i in range(count):
        port = first_port + i if first_port else free_port()
        nodes.append(NodeProcess(os.path.join(directory, f"node-{i + 1}"), port=port).start(*args))
    return nodes


def measure(count: int, directory: str) -> dict:
    nodes = start_nodes(directory, count, ["--storage", "memory"])
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
        victim.start("--storage", "memory", "--join", f"127.0.0.1:{nodes[0].port}")
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
