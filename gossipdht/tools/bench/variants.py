"""Single-key ``PUT`` and ``GET`` through clusters that differ in one setting: rounds
interleaved, the order of the clusters turning each round so that none is always first,
each cluster measured alone (the others paused meanwhile), and each rate shown as a share
of the first cluster's (``--security``, ``--metrics``)."""

from __future__ import annotations

from functools import partial
from typing import Callable, Mapping, Sequence

from gossipdht.tools.bench import (
    Settings,
    cluster_system,
    generator_cell,
    measure_alone,
    warmed,
)
from gossipdht.tools.bench.isolation import System
from gossipdht.tools.nodeprocess import NodeProcess

OPERATIONS = (("PUT", "put.lua"), ("GET", "get.lua"))


def cluster_systems(clusters: Mapping[str, Sequence[NodeProcess]]) -> dict[str, System]:
    """Each cluster as a system of its own, by variant."""
    return {variant: cluster_system(variant, nodes) for variant, nodes in clusters.items()}


def measure_round(clusters: Mapping[str, Sequence[NodeProcess]], settings: Settings, round_: int,
                  results: dict[str, list], progress: Callable[[str], None]) -> None:
    """``PUT`` then ``GET`` through the first node of each cluster, the others paused,
    appended to ``results["PUT <variant>"]`` and so on; ``GET`` reads the preloaded keys."""
    systems = cluster_systems(clusters)
    variants = list(clusters)
    shift = round_ % len(variants)
    for operation, script in OPERATIONS:
        for variant in variants[shift:] + variants[:shift]:
            index = variants.index(variant)
            args = (lambda phase, i=index: [f"bench-{i}-{phase}"]) if operation == "PUT" else (
                lambda phase: [str(settings.preload)])
            progress(f"round {round_}/{settings.rounds}: {operation} {variant}")
            results.setdefault(f"{operation} {variant}", []).append(measure_alone(
                systems[variant], systems.values(),
                partial(warmed, clusters[variant][0].url("/db/"), script, settings, round_, args,
                        pids=[node.pid for node in clusters[variant]]), progress))


def format_rows(rows: Sequence[dict], yardstick: str) -> list[str]:
    """The table of ``rows`` (``aggregate``'s, as dictionaries), each rate and the cluster's
    CPU a request (all its nodes, from ``/proc``) also as a share of the same operation's
    through the ``yardstick`` cluster."""
    by_name = {row["operation"]: row for row in rows}
    lines = [f"{'operation':<28} {'req/s':>9} {'of ' + yardstick:>13} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
             f"{'CPU us/req':>10} {'of ' + yardstick:>13} {'gen CPU':>7}"]
    for row in rows:
        base = by_name[f"{row['operation'].split(' ', 1)[0]} {yardstick}"]
        share, cpu_share = (f"{row[field] / base[field]:.3f}" if row.get(field) and base.get(field) else "-"
                            for field in ("rate", "system_cpu_us"))
        rate = f"{row['rate']:,.0f}" if row["rate"] else "-"
        cpu = f"{row['system_cpu_us']:,.0f}" if row.get("system_cpu_us") else "-"
        p50, p99 = ("-" if ms is None else f"{ms:.2f}" for ms in (row["p50_ms"], row["p99_ms"]))
        lines.append(f"{row['operation']:<28} {rate:>9} {share:>13} {p50:>8} {p99:>8} {row['errors']:>7} "
                     f"{cpu:>10} {cpu_share:>13} {generator_cell(row['generator_cpu']):>7}".rstrip())
    return lines
