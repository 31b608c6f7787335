"""The long scenarios of the benchmark: how throughput holds as the data grows, what a
fourth node costs to add, and what an idle cluster costs.

``python -m gossipdht.tools.bench --scale`` and ``--idle`` run them (see ``__main__``).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Callable, Optional, Sequence

from gossipdht.tools.bench import (
    Row,
    Settings,
    aggregate,
    cluster_system,
    join,
    measure_alone,
    peers,
    preload,
    preloaded,
    start_cluster,
    wait_for,
    warmed,
)
from gossipdht.tools.bench.cputime import cpu_seconds, wait_until_quiet
from gossipdht.tools.nodeprocess import NodeProcess

#: Moved counters must stay still this long before the move counts as over.
SETTLED_SECONDS = 3.0
POLL_SECONDS = 0.5
#: A node joining a cluster of 1,000,000 keys receives 750,000 replicas before it answers.
JOIN_SECONDS = 600
#: After a load, the nodes still copy their write-ahead logs and compare replicas for a
#: while: rates are measured once the machine is quiet (``wait_until_quiet``) over this
#: long, or after ``AFTER_LOAD_SECONDS`` at most (longer than between the main bench's rows).
AFTER_LOAD_SAMPLE_SECONDS = 2.0
AFTER_LOAD_SECONDS = 120.0


def data_stats(node: NodeProcess) -> dict:
    status, _, body = node.request("GET", "/dht/stats", timeout=30)
    if status != 200:
        raise RuntimeError(f"/dht/stats of port {node.port}: {status}")
    return json.loads(body)["data"]


def moved(nodes: Sequence[NodeProcess]) -> int:
    """Records sent between nodes so far: pulled by anti-entropy or pushed by handoff."""
    return sum(s["keys_repaired"] + s["keys_handed_off"] for s in map(data_stats, nodes))


def single_key_rates(settings: Settings, clusters: Sequence[tuple[Sequence[NodeProcess], int]],
                     progress: Callable[[str], None] = lambda message: None) -> list[dict]:
    """PUT of new keys and GET of stored ones through the first node of each ``(nodes,
    keys stored)``, the other clusters paused: medians of the rounds.  The clusters take
    turns within each round, in an order that alternates, so that the machine's drift
    between rounds weighs on all of them alike."""
    tests = (("PUT", "put.lua", lambda i, phase: [f"scale-{i}-{phase}"]),
             ("GET", "get.lua", lambda i, phase: [str(clusters[i][1])]))
    systems = [cluster_system(f"cluster of {keys:,} keys", nodes) for nodes, keys in clusters]
    results: list[dict[str, list]] = [{name: [] for name, _, _ in tests} for _ in clusters]
    for round_ in range(1, settings.rounds + 1):
        for i in range(len(clusters)) if round_ % 2 else reversed(range(len(clusters))):
            for name, script, args in tests:
                url = clusters[i][0][0].url("/db/")
                results[i][name].append(measure_alone(systems[i], systems, partial(
                    warmed, url, script, settings, round_, partial(args, i)), progress))
    return [{name: _summary(aggregate(name, rounds)) for name, rounds in by_name.items()} for by_name in results]


def _summary(row: Row) -> dict:
    return {"rate": row.rate, "p50_ms": row.p50_ms, "p99_ms": row.p99_ms, "errors": row.errors}


class Reader(threading.Thread):
    """GETs of stored keys, one after the other, while something else happens: did the
    cluster keep serving, and how fast."""

    def __init__(self, node: NodeProcess, stored: int) -> None:
        super().__init__(daemon=True)
        self.node, self.stored = node, stored
        self.done = threading.Event()
        self.latencies: list[float] = []
        self.errors = 0

    def run(self) -> None:
        i = 0
        while not self.done.is_set():
            i = (i * 7919 + 1) % self.stored
            started = time.monotonic()
            try:
                status, _, _ = self.node.request("GET", f"/db/{preloaded(i)[0]}", timeout=10)
            except OSError:
                status = None
            self.latencies.append(time.monotonic() - started)
            self.errors += status != 200

    def summary(self) -> dict:
        ordered = sorted(self.latencies) or [0.0]
        return {"requests": len(self.latencies), "errors": self.errors,
                "p50_ms": 1000 * ordered[len(ordered) // 2], "p99_ms": 1000 * ordered[int(len(ordered) * 0.99)]}


def add_node(stack: ExitStack, nodes: list[NodeProcess], directory: Path, preloaded: int) -> dict:
    """Join a node to ``nodes`` while a reader keeps reading ``preloaded`` keys; what
    moved, and how fast."""
    before_held = sum(s["keys_held"] for s in map(data_stats, nodes))
    before = moved(nodes)
    newcomer = NodeProcess(directory / f"node-{len(nodes) + 1}")
    stack.callback(newcomer.stop)
    newcomer.start()
    reader = Reader(nodes[0], preloaded)
    reader.start()
    started = time.monotonic()
    join(newcomer, nodes[0], timeout=JOIN_SECONDS)
    joined = time.monotonic() - started
    nodes.append(newcomer)
    last, still_since = moved(nodes), time.monotonic()
    while time.monotonic() - still_since < SETTLED_SECONDS:
        time.sleep(POLL_SECONDS)
        now = moved(nodes)
        if now != last:
            last, still_since = now, time.monotonic()
    seconds = still_since - started
    reader.done.set()
    reader.join()
    records = last - before
    ideal = before_held / len(nodes)  # the new node's share of all replicas
    return {"replicas_before": before_held, "records_moved": records, "ideal": ideal,
            "moved_to_ideal": records / ideal, "seconds": seconds, "join_answered_seconds": joined,
            "records_per_second": records / seconds, "keys_held": [s["keys_held"] for s in map(data_stats, nodes)],
            "reads_meanwhile": reader.summary()}


def scale(settings: Settings, small: int, large: int, directory: Path,
          progress: Callable[[str], None]) -> dict:
    """Single-key rates of a cluster holding ``small`` keys against one holding ``large``
    keys, measured side by side, then a fourth node joining the larger."""
    with ExitStack() as stack:
        progress("starting two 3-node clusters")
        smaller = start_cluster(stack, directory / "scale-small", replicas=3)
        larger = start_cluster(stack, directory / "scale-large", replicas=3)
        progress(f"loading {small:,} and {large:,} keys")
        preload(smaller, small)
        preload(larger, large)
        wait_until_quiet(AFTER_LOAD_SAMPLE_SECONDS, AFTER_LOAD_SECONDS)
        progress("measuring both, rounds interleaved, each while the other is paused")
        at_small, at_large = single_key_rates(settings, [(smaller, small), (larger, large)], progress)
        progress("adding a fourth node to the larger")
        added = add_node(stack, larger, directory / "scale-large", large)
    return {
        "keys": [small, large],
        "rates": {str(small): at_small, str(large): at_large},
        "drop": {op: 1 - at_large[op]["rate"] / at_small[op]["rate"] for op in ("PUT", "GET")},
        "fourth_node": added,
    }


def idle(count: int, seconds: float, directory: Path, progress: Callable[[str], None]) -> dict:
    """The CPU that each node of an idle ``count``-node cluster uses, in % of one core."""
    with ExitStack() as stack:
        progress(f"starting {count} nodes")
        nodes = start_cluster(stack, directory / "idle-cluster", replicas=3, count=count)
        wait_for(lambda: all(len(peers(n)) == count for n in nodes), 60)
        time.sleep(2)  # the last join's data round
        progress(f"measuring {seconds:.0f} s of idleness")
        before = [cpu_seconds(n.pid) for n in nodes]
        time.sleep(seconds)
        used = [100 * (cpu_seconds(n.pid) - b) / seconds for n, b in zip(nodes, before)]
    return {"nodes": count, "seconds": seconds, "cpu_percent_mean": statistics.mean(used),
            "cpu_percent_max": max(used), "cpu_percent": used}


def format_scale(report: dict) -> str:
    small, large = report["keys"]
    lines = ["single-key rates through one node of 3 (N=3, R=W=2) as the data grows:",
             f"{'operation':10s}{f'{small:,} keys':>18s} {f'{large:,} keys':>19s} {'change':>8s}"]
    for op in ("PUT", "GET"):
        a, b = report["rates"][str(small)][op], report["rates"][str(large)][op]
        lines.append(f"{op:10s}{_rate(a):>18s} {_rate(b):>19s} {-report['drop'][op]:>+8.0%}")
    added = report["fourth_node"]
    reads = added["reads_meanwhile"]
    lines += [
        f"a fourth node joins 3 holding {added['replicas_before'] // 3:,} keys ({added['replicas_before']:,} replicas):",
        f"  moved {added['records_moved']:,} records for an ideal share of {added['ideal']:,.0f}: "
        f"{added['moved_to_ideal']:.2f} x ideal, in {added['seconds']:.1f} s "
        f"({added['records_per_second']:,.0f} records/s; POST /dht/join answered after "
        f"{added['join_answered_seconds']:.1f} s)",
        f"  meanwhile {reads['requests']:,} GETs one after another through node 1: {reads['errors']} errors, "
        f"p50 {reads['p50_ms']:.1f} ms, p99 {reads['p99_ms']:.1f} ms",
        f"  keys held afterwards: {', '.join(f'{k:,}' for k in added['keys_held'])}",
    ]
    return "\n".join(lines)


def format_idle(report: dict) -> str:
    return (f"an idle {report['nodes']}-node cluster over {report['seconds']:.0f} s: "
            f"{report['cpu_percent_mean']:.2f} % of one core per node on average, "
            f"{report['cpu_percent_max']:.2f} % at most")


def _rate(row: dict) -> str:
    rate: Optional[float] = row["rate"]
    return "n/a" if rate is None else f"{rate:,.0f}/s p99 {row['p99_ms']:.0f} ms"

