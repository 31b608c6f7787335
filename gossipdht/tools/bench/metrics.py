"""What the metrics cost: single-key ``PUT`` and ``GET`` through a 3-node cluster with
``--metrics false`` and one with metrics on (the default), in interleaved rounds
(``variants``); and how long a scrape of ``/metrics`` takes."""

from __future__ import annotations

import statistics
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from gossipdht.tools.bench import Settings, aggregate, preload, start_cluster
from gossipdht.tools.bench.variants import format_rows, measure_round
from gossipdht.tools.nodeprocess import NodeProcess

#: The yardstick first: each rate is shown as a share of the cluster's without metrics.
VARIANTS = {"metrics off": ["--metrics", "false"], "metrics on": []}
SCRAPES = 20


def _scrape_ms(node: NodeProcess) -> float:
    """The median time of a scrape of ``node``'s ``/metrics``, on a fresh connection each."""
    times = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        status, _, body = node.request("GET", "/metrics")
        times.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"GET /metrics answered {status}: {body[:200]!r}")
    return statistics.median(times) * 1000


def run_metrics(settings: Settings, scratch: Path, progress: Callable[[str], None] = lambda message: None) -> dict:
    """Start the two clusters in ``scratch``, measure, stop them; the report."""
    with ExitStack() as stack:
        progress(f"starting two 3-node clusters: {', '.join(VARIANTS)}")
        clusters = {}
        for variant, options in VARIANTS.items():
            directory = scratch / variant.replace(" ", "-")
            directory.mkdir(parents=True)
            clusters[variant] = start_cluster(stack, directory, replicas=3, options=lambda node, o=options: o)
        progress(f"preloading {settings.preload:,} keys into each")
        for nodes in clusters.values():
            preload(nodes, settings.preload)
        results: dict[str, list] = {}
        for round_ in range(1, settings.rounds + 1):
            measure_round(clusters, settings, round_, results, progress)
        scrape_ms = _scrape_ms(clusters["metrics on"][0])
        rows = [aggregate(name, measurements) for name, measurements in results.items()]
    # Each row holds each round's rate too (``rates``): on this shared machine a median alone
    # hides how far rounds spread.
    return {"rows": [asdict(row) for row in rows], "scrape_ms": scrape_ms,
            "rounds": settings.rounds, "seconds": settings.seconds, "preloaded_keys": settings.preload,
            "command": settings.command}


def format_metrics(report: dict) -> str:
    return "\n".join([
        *format_rows(report["rows"], "metrics off"),
        f"a scrape of /metrics: {report['scrape_ms']:.1f} ms (median of {SCRAPES}, a new connection each)",
        f"{report['rounds']} rounds of {report['seconds']} s, interleaved; medians; "
        f"{report['preloaded_keys']:,} keys preloaded in each cluster",
    ])
