"""What security costs: single-key ``PUT`` and ``GET`` through a 3-node cluster without it,
with a gossip keyring, and with mutual TLS and the keyring, in interleaved rounds whose
order of clusters turns each round, each cluster measured alone (each rate also as a share
of the plaintext one); the
gossip bytes each node sends a second; and ``GET`` through the keyed cluster while
datagrams that no key opens flood its first node, with how many it refused a second."""

from __future__ import annotations

import json
import os
import socket
import ssl
import statistics
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from gossipdht.core.keyring import new_key
from gossipdht.tools.bench import Measurement, Settings, aggregate, measure_alone, preload, start_cluster, warmed
from gossipdht.tools.bench.variants import cluster_systems, format_rows, measure_round
from gossipdht.tools.certificates import authority
from gossipdht.tools.nodeprocess import HOST, NodeProcess

VARIANTS = ("plaintext", "keyring", "mutual TLS + keyring")
GOSSIP_SECONDS = 10.0
#: The flood's datagrams: a sealed message's first byte, then bytes no key opens.
FLOOD_BYTES = 200


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
        results: dict[str, list] = {}
        refused: list[float] = []
        systems = cluster_systems(clusters)
        node = clusters["keyring"][0]
        for round_ in range(1, settings.rounds + 1):
            measure_round(clusters, settings, round_, results, progress)
            progress(f"round {round_}/{settings.rounds}: GET keyring, flooded")
            results.setdefault("GET keyring, flooded", []).append(measure_alone(
                systems["keyring"], systems.values(),
                partial(_flooded, node, refused, warmed, node.url("/db/"), "get.lua", settings, round_,
                        lambda phase: [str(settings.preload)]), progress))
        order = [f"{operation} {variant}" for operation in ("PUT", "GET") for variant in VARIANTS]
        rows = [aggregate(name, results[name]) for name in order + ["GET keyring, flooded"]]
    return {"rows": [asdict(row) for row in rows], "gossip_bytes_per_node_second": gossip,
            "flood_refused_per_second": statistics.median(refused) if refused else None,
            "rounds": settings.rounds, "seconds": settings.seconds, "preloaded_keys": settings.preload,
            "command": settings.command}


def _unopened(node: NodeProcess) -> int:
    return sum(json.loads(node.request("GET", "/dht/stats")[2])["gossip"]["datagrams_unopened"].values())


def _flooded(node: NodeProcess, refused: list[float], measure: Callable[..., Measurement], *args) -> Measurement:
    """``measure(*args)`` while a thread sends ``node`` datagrams no key opens, as fast as it
    can; how many the node refused a second meanwhile is appended to ``refused``."""
    stop = threading.Event()
    datagram = bytes([0x80]) + os.urandom(FLOOD_BYTES - 1)

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            while not stop.is_set():
                try:
                    udp.sendto(datagram, (node.host, node.port))  # the gossip port is the API's number
                except OSError:  # a full send buffer
                    pass
    before, started = _unopened(node), time.monotonic()
    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    try:
        result = measure(*args)
    finally:
        stop.set()
        sender.join()
    refused.append((_unopened(node) - before) / (time.monotonic() - started))
    return result


def format_security(report: dict) -> str:
    lines = format_rows(report["rows"], "plaintext")
    plain = report["gossip_bytes_per_node_second"]["plaintext"]
    for variant, sent in report["gossip_bytes_per_node_second"].items():
        lines.append(f"gossip {variant:<21} {sent:>9,.0f} B/s per node ({sent / plain:.3f} of plaintext)")
    flood = report["flood_refused_per_second"]
    lines.append(f"flood: {'n/a' if flood is None else f'{flood:,.0f}'} datagrams refused a second by the flooded node")
    lines.append(f"{report['rounds']} rounds of {report['seconds']} s, interleaved; medians; "
                 f"{report['preloaded_keys']:,} keys preloaded in each cluster")
    return "\n".join(lines)
