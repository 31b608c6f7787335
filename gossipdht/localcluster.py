"""A cluster of local ``twistd`` nodes on loopback, for trying gossipdht and measuring it.

``python -m gossipdht.localcluster run --nodes 3`` starts the nodes, joins them and
serves until Ctrl-C.  ``python -m gossipdht.localcluster measure --nodes 10`` times the
membership targets with real processes: nodes joined one after another through
``POST /dht/join``, a ``kill -9``, and a restart, and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
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


def join(node: NodeProcess, seed: NodeProcess) -> None:
    status, _, body = node.request("POST", "/dht/join", f"127.0.0.1:{seed.port}".encode(), timeout=30)
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


def run(count: int, first_port: int, directory: str) -> None:
    nodes = start_nodes(directory, count, [], first_port)
    try:
        for node in nodes[1:]:
            join(node, nodes[0])
        first = nodes[0].url("")
        print(f"{count} gossipdht nodes on {', '.join(n.url('') for n in nodes)}; data and logs in {directory}")
        print("Ctrl-C stops them. Try:")
        print(f"  curl {first}/dht/peers")
        print(f"  curl {first}/dht/members")
        print(f"  curl -XPUT -dvalue=myvalue {first}/db/mykey")
        print(f"  curl {first}/db/mykey")
        print(f"  curl {nodes[-1].url('')}/dht/leave")
        while all(node.running for node in nodes):
            time.sleep(0.5)
        print("a node exited; see its node.log", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for node in nodes:
            node.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gossipdht.localcluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "measure"])
    parser.add_argument("--nodes", type=int, default=None, help="default: run 3, measure 10")
    parser.add_argument("--port", type=int, default=8080, help="first node's port (run); the others follow")
    parser.add_argument("--dir", default=None, help="where nodes keep data and logs")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.nodes or 3, args.port, args.dir or os.path.join("gossipdht-data", "local"))
    else:
        with tempfile.TemporaryDirectory() as scratch:
            print(json.dumps(measure(args.nodes or 10, args.dir or scratch)))


if __name__ == "__main__":
    main()
