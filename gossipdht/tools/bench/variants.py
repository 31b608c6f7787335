"""Single-key ``PUT`` and ``GET`` through clusters that differ in one setting: rounds
interleaved, the order of the clusters turning each round so that none is always first,
and each rate shown as a share of the first cluster's (``--security``, ``--metrics``)."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence, Union

from gossipdht.tools.bench import Measurement, Settings, Unavailable, wait_until_quiet, warmed
from gossipdht.tools.nodeprocess import NodeProcess

OPERATIONS = (("PUT", "put.lua"), ("GET", "get.lua"))


def measured(measure: Callable[..., Measurement], *args) -> Union[Measurement, Unavailable]:
    """``measure(*args)``, or the Unavailable it raised."""
    try:
        return measure(*args)
    except Unavailable as e:
        return e


def measure_round(clusters: Mapping[str, Sequence[NodeProcess]], settings: Settings, round_: int,
                  results: dict[str, list], progress: Callable[[str], None]) -> None:
    """``PUT`` then ``GET`` through the first node of each cluster, appended to
    ``results["PUT <variant>"]`` and so on; ``GET`` reads the preloaded keys."""
    variants = list(clusters)
    shift = round_ % len(variants)
    for operation, script in OPERATIONS:
        for variant in variants[shift:] + variants[:shift]:
            index = variants.index(variant)
            args = (lambda phase, i=index: [f"bench-{i}-{phase}"]) if operation == "PUT" else (
                lambda phase: [str(settings.preload)])
            wait_until_quiet()
            progress(f"round {round_}/{settings.rounds}: {operation} {variant}")
            results.setdefault(f"{operation} {variant}", []).append(
                measured(warmed, clusters[variant][0].url("/db/"), script, settings, round_, args))


def format_rows(rows: Sequence[dict], yardstick: str) -> list[str]:
    """The table of ``rows`` (``aggregate``'s, as dictionaries), each rate also as a share of
    the same operation's through the ``yardstick`` cluster."""
    by_name = {row["operation"]: row for row in rows}
    lines = [f"{'operation':<28} {'req/s':>9} {'of ' + yardstick:>13} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"]
    for row in rows:
        base = by_name[f"{row['operation'].split(' ', 1)[0]} {yardstick}"]["rate"]
        share = f"{row['rate'] / base:.3f}" if row["rate"] and base else "-"
        rate = f"{row['rate']:,.0f}" if row["rate"] else "-"
        lines.append(f"{row['operation']:<28} {rate:>9} {share:>13} {row['p50_ms'] or '-':>8} "
                     f"{row['p99_ms'] or '-':>8} {row['errors']:>7}")
    return lines
