"""What security costs: single-key ``PUT`` and ``GET`` through a 3-node cluster without it,
with a gossip keyring, and with mutual TLS and the keyring, in interleaved rounds (each
rate also as a share of the plaintext one); and the gossip bytes each node sends a second."""

from __future__ import annotations

import json
import ssl
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from gossipdht.core.keyring import new_key
from gossipdht.tools.bench import Operation, Settings, measure_rounds, preload, start_cluster, warmed
from gossipdht.tools.certificates import authority
from gossipdht.tools.nodeprocess import HOST, NodeProcess

VARIANTS = ("plaintext", "keyring", "mutual TLS + keyring")
GOSSIP_SECONDS = 10.0


def _variant(stack: ExitStack, scratch: Path, variant: str) -> list[NodeProcess]:
    directory = scratch / variant.replace(" ", "-").replace("+", "and")
    directory.mkdir(parents=True)
    keyring = directory / "keyring"
    keyring.write_text(new_key() + "\n")
    keyed = ["--keyring", str(keyring)] if variant != "plaintext" else []
    if not variant.startswith("mutual TLS"):
        return start_cluster(stack, directory, replicas=3, options=lambda node: keyed)
    ca = authority(directory, "ca")
    key, cert = ca.issue(directory, "node", HOST)  # one certificate for every node, server and client

    def options(node: NodeProcess) -> list[str]:
        return [*keyed, "--listen", f"ssl:{node.port}:interface={HOST}:privateKey={key}:certKey={cert}",
                "--tls-ca", str(ca.cert), "--tls-client-cert", str(cert), "--tls-client-key", str(key)]
    return start_cluster(stack, directory, replicas=3, options=options, tls=ssl.create_default_context(cafile=str(ca.cert)))


def _gossip_bytes(nodes: Sequence[NodeProcess], seconds: float) -> float:
    """Gossip bytes a node sends a second, averaged over the nodes, while idle."""
    def sent() -> int:
        return sum(json.loads(node.request("GET", "/dht/stats")[2])["gossip"]["bytes_sent"] for node in nodes)
    before, started = sent(), time.monotonic()
    time.sleep(seconds)
    return (sent() - before) / (time.monotonic() - started) / len(nodes)


def run_security(settings: Settings, scratch: Path, progress: Callable[[str], None] = lambda message: None) -> dict:
    """Start the three clusters in ``scratch``, measure, stop them; the report."""
    with ExitStack() as stack:
        progress(f"starting three 3-node clusters: {', '.join(VARIANTS)}")
        clusters = {variant: _variant(stack, scratch, variant) for variant in VARIANTS}
        progress(f"preloading {settings.preload:,} keys into each")
        for nodes in clusters.values():
            preload(nodes, settings.preload)
        progress(f"gossip bytes over {GOSSIP_SECONDS:g} s of each idle cluster")
        gossip = {variant: _gossip_bytes(nodes, GOSSIP_SECONDS) for variant, nodes in clusters.items()}
        ops = []
        for operation, script in (("PUT", "put.lua"), ("GET", "get.lua")):
            for variant, nodes in clusters.items():
                def measure(round_: int, node=nodes[0], operation=operation, script=script, variant=variant):
                    args = (lambda phase: [f"bench-{variant[:3]}-{phase}"]) if operation == "PUT" else (
                        lambda phase: [str(settings.preload)])
                    return warmed(node.url("/db/"), script, settings, round_, args)
                ops.append(Operation(f"{operation} {variant}", measure))
        rows = measure_rounds(ops, settings.rounds, progress)
    return {"rows": [asdict(row) for row in rows], "gossip_bytes_per_node_second": gossip,
            "rounds": settings.rounds, "seconds": settings.seconds, "preloaded_keys": settings.preload,
            "command": settings.command}


def format_security(report: dict) -> str:
    rows = {row["operation"]: row for row in report["rows"]}
    lines = [f"{'operation':<28} {'req/s':>9} {'of plaintext':>13} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"]
    for row in report["rows"]:
        operation = row["operation"].split(" ", 1)[0]
        plain = rows[f"{operation} plaintext"]["rate"]
        share = f"{row['rate'] / plain:.3f}" if row["rate"] and plain else "-"
        rate = f"{row['rate']:,.0f}" if row["rate"] else "-"
        lines.append(f"{row['operation']:<28} {rate:>9} {share:>13} {row['p50_ms'] or '-':>8} "
                     f"{row['p99_ms'] or '-':>8} {row['errors']:>7}")
    plain = report["gossip_bytes_per_node_second"]["plaintext"]
    for variant, sent in report["gossip_bytes_per_node_second"].items():
        lines.append(f"gossip {variant:<21} {sent:>9,.0f} B/s per node ({sent / plain:.3f} of plaintext)")
    lines.append(f"{report['rounds']} rounds of {report['seconds']} s, interleaved; medians; "
                 f"{report['preloaded_keys']:,} keys preloaded in each cluster")
    return "\n".join(lines)
