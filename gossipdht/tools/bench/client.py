"""What skipping the hop buys (``--client``): single-key ``PUT`` and ``GET`` through the
ring-aware Python client (``gossipdht.client.Client``), which sends each request to an
owner of its key, against the same client sending every request to one fixed node, side
by side on a 3-node cluster with N=2 and on a 5-node one with N=3 (where a fixed node owns
three keys in five).

The load is the same for both: ``PROCESSES`` processes of ``THREADS`` threads, each
thread one request at a time on its own kept connection, for the same seconds, in
interleaved rounds whose order turns each round (``variants``), each cluster measured
alone (the other paused).  Each row also gives the share of its requests that a non-owner
coordinated, from the nodes' ``/dht/stats``, and the CPU the cluster spent a request.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional, Sequence

from gossipdht.client import Client, RequestError
from gossipdht.client.routing import Router
from gossipdht.core.address import Address, parse_address
from gossipdht.tools.bench import (
    Measurement,
    Settings,
    aggregate,
    measure_alone,
    preload,
    preloaded,
    start_cluster,
)
from gossipdht.tools.bench.cputime import cpu_seconds
from gossipdht.tools.bench.variants import cluster_systems, format_rows
from gossipdht.tools.nodeprocess import NodeProcess

#: (name, nodes, N) of each cluster.
CLUSTERS = (("3 nodes, N=2", 3, 2), ("5 nodes, N=3", 5, 3))
#: The yardstick first: each rate is shown as a share of the fixed node's.
VARIANTS = ("one node", "ring-aware")
OPERATIONS = ("PUT", "GET")
PROCESSES = 2
THREADS = 8
NON_OWNER = ("reads_coordinated_as_non_owner", "writes_coordinated_as_non_owner")


class OneNode(Router):
    """The client's router, sending every request to one node (then the others, should it not answer)."""

    def __init__(self, node: Address, seeds: Sequence[Address]) -> None:
        super().__init__(seeds, random.Random())
        self.node = node

    def targets(self, key: Optional[str], now: float) -> list[Address]:
        return [self.node] + [a for a in super().targets(key, now) if a != self.node]


def _client(seeds: list[str], fixed: bool) -> Client:
    """The ring-aware client, or (``fixed``) the same client sending everything to the first seed."""
    client = Client(seeds)
    if fixed:
        addresses = [parse_address(seed, "node") for seed in seeds]
        client.router = OneNode(addresses[0], addresses)
    return client


def drive(seeds: list[str], fixed: bool, operation: str, seconds: float, prefix: str,
          preloaded_keys: int, threads: int = THREADS) -> tuple[int, int, list[float], float]:
    """One process of the load: ``threads`` threads sending ``operation`` for ``seconds``
    through one client; (requests, errors, latencies in seconds, CPU seconds it spent)."""
    client = _client(seeds, fixed)
    client.get(preloaded(0)[0])  # the member list read, connections not yet: as in a long-running program
    cpu = time.process_time()
    counts, errors, latencies = [0] * threads, [0] * threads, [[] for _ in range(threads)]
    deadline = time.monotonic() + seconds

    def run(t: int) -> None:
        rng = random.Random(f"{prefix}-{t}")
        while True:
            started = time.monotonic()
            if started >= deadline:
                return
            try:
                if operation == "PUT":
                    client.put(f"{prefix}-{t}-{counts[t]}", "v" * 16)
                else:
                    client.get(preloaded(rng.randrange(preloaded_keys))[0])
            except RequestError:
                errors[t] += 1
            latencies[t].append(time.monotonic() - started)
            counts[t] += 1

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    client.close()
    return sum(counts), sum(errors), [latency for each in latencies for latency in each], time.process_time() - cpu


def measure(nodes: Sequence[NodeProcess], fixed: bool, operation: str, seconds: float, prefix: str,
            preloaded_keys: int) -> tuple[Measurement, float]:
    """``PROCESSES`` processes of ``drive`` at once; the measurement (with the generator's
    and the cluster's CPU) and the share of its requests that a non-owner coordinated."""
    seeds = [f"{node.host}:{node.port}" for node in nodes]
    before = _non_owner(nodes)
    cpu_before = sum(cpu_seconds(node.pid) for node in nodes)
    with ProcessPoolExecutor(PROCESSES) as pool:
        runs = list(pool.map(drive, *zip(*[(seeds, fixed, operation, seconds, f"{prefix}-p{p}", preloaded_keys)
                                            for p in range(PROCESSES)])))
    cluster_cpu = sum(cpu_seconds(node.pid) for node in nodes) - cpu_before
    requests, errors = sum(r[0] for r in runs), sum(r[1] for r in runs)
    latencies = sorted(latency for r in runs for latency in r[2])
    hops = (_non_owner(nodes) - before) / requests if requests else 0.0
    return Measurement(
        requests=requests, seconds=seconds, errors=errors,
        p50_ms=round(statistics.median(latencies) * 1000, 2) if latencies else None,
        p99_ms=round(latencies[int(len(latencies) * 0.99)] * 1000, 2) if latencies else None,
        generator_cpu=sum(r[3] for r in runs) / seconds,
        system_cpu_us=cluster_cpu / requests * 1e6 if requests else None,
    ), hops


def _non_owner(nodes: Sequence[NodeProcess]) -> int:
    """Requests coordinated by a node that owns no copy of their key, summed over the nodes."""
    total = 0
    for node in nodes:
        data = json.loads(node.request("GET", "/dht/stats")[2])["data"]
        total += sum(data[counter] for counter in NON_OWNER)
    return total


def run_client(settings: Settings, scratch: Path, progress: Callable[[str], None] = lambda message: None) -> dict:
    """Start both clusters in ``scratch``, measure each variant, stop them; the report."""
    results: dict[str, dict[str, list]] = {}
    hops: dict[str, dict[str, list[float]]] = {}
    with ExitStack() as stack:
        clusters = {}
        for cluster, count, replicas in CLUSTERS:
            progress(f"starting a cluster of {cluster}")
            directory = scratch / cluster.replace(" ", "").replace(",", "-").replace("=", "")
            directory.mkdir(parents=True)
            clusters[cluster] = start_cluster(stack, directory, replicas=replicas, count=count)
            progress(f"preloading {settings.preload:,} keys")
            preload(clusters[cluster], settings.preload)
        systems = cluster_systems(clusters)
        for round_ in range(1, settings.rounds + 1):
            shift = round_ % len(VARIANTS)
            for cluster, nodes in clusters.items():
                for operation in OPERATIONS:
                    for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                        name = f"{operation} {variant}"
                        progress(f"round {round_}/{settings.rounds}: {cluster}: {name}")
                        shares = hops.setdefault(cluster, {}).setdefault(name, [])

                        def warmed_up(nodes=nodes, fixed=variant == "one node", operation=operation, shares=shares,
                                      prefix=f"client-{cluster[0]}-{variant[0]}-{round_}") -> Measurement:
                            measure(nodes, fixed, operation, settings.warmup, prefix + "-w", settings.preload)
                            measured, share = measure(nodes, fixed, operation, settings.seconds, prefix,
                                                      settings.preload)
                            shares.append(share)
                            return measured
                        results.setdefault(cluster, {}).setdefault(name, []).append(
                            measure_alone(systems[cluster], systems.values(), warmed_up, progress))
    order = [f"{operation} {variant}" for operation in OPERATIONS for variant in VARIANTS]
    return {
        "clusters": {cluster: {"rows": [asdict(aggregate(name, by_name[name])) for name in order],
                               "non_owner_share": {name: statistics.median(hops[cluster][name] or [0.0])
                                                   for name in order}}
                     for cluster, by_name in results.items()},
        "load": f"{PROCESSES} processes x {THREADS} threads, one request at a time each",
        "rounds": settings.rounds, "seconds": settings.seconds, "preloaded_keys": settings.preload,
        "command": settings.command,
    }


def format_client(report: dict) -> str:
    lines = []
    for cluster, result in report["clusters"].items():
        lines.append(f"{cluster}:")
        table = format_rows(result["rows"], "one node")
        shares = result["non_owner_share"]
        lines.append(f"  {table[0]} {'non-owner':>10}")
        lines += [f"  {line} {shares[row['operation']]:>10.1%}" for line, row in zip(table[1:], result["rows"])]
    lines.append(f"the Python client, {report['load']}; {report['rounds']} rounds of {report['seconds']} s, "
                 f"interleaved; medians; {report['preloaded_keys']:,} keys preloaded in each cluster; "
                 "non-owner: the share of requests coordinated by a node that holds no copy of the key")
    return "\n".join(lines)
