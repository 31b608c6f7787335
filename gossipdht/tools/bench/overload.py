"""One node of three flooded (``--overload``): single-key ``GET`` and ``PUT`` through a second
node with the first node idle (``calm``), busy at its capacity with ``GET`` from 16
connections (``busy``), and flooded with ``GET`` from 256 (``flooded``), in rounds whose
order turns; what the first node answered (its 503s, the latency of every answer and of
those it admitted); what gossip saw meanwhile; and what one 503 costs.

On one machine the question needs the processors split, or the flood's CPU alone would slow
the other nodes: the first node and the ``wrk`` loading it run on the first processor, the
other nodes and the ``wrk`` measuring them on the second.  The requests the first node
admits still read from the other two, on the second processor: ``busy`` is what that costs
them, so ``flooded`` against ``busy`` is what a flood does beyond it (a node shedding its
excess should cost its peers no more than one serving at its capacity)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional, Sequence

from gossipdht.tools.bench import (
    CONNECTIONS,
    SCRIPTS,
    Settings,
    aggregate,
    parse_wrk,
    preload,
    run_wrk,
    start_cluster,
    warmed,
)
from gossipdht.tools.bench.cputime import cpu_seconds, wait_until_quiet
from gossipdht.tools.bench.variants import format_rows
from gossipdht.tools.localcluster import wait_for
from gossipdht.tools.nodeprocess import NodeProcess

FLOOD_CONNECTIONS = 256
#: The first node's load by phase: wrk's connections (none: idle).
LOADS = {"calm": 0, "busy": CONNECTIONS, "flooded": FLOOD_CONNECTIONS}
#: Connections of wrk's that the refusing node answers with 503s.
REFUSED_CONNECTIONS = 64
#: Seconds the flood runs before the other nodes are measured.
FLOOD_LEAD = 2
#: Seconds between two looks at every node's view of the members.
WATCH_INTERVAL = 0.2
_BUCKET = re.compile(r'gossipdht_http_request_duration_seconds_bucket\{le="([^"]+)",operation="get"\} (\S+)')
_UNHEALTHY = re.compile(rb'gossipdht_members\{state="(suspect|dead)"\} (\S+)')


def split_processors(flooded: NodeProcess, others: Sequence[NodeProcess]) -> Optional[tuple[int, int]]:
    """The flooded node on one processor, the other nodes and this process (so the ``wrk``
    it starts) on another: the two processors, or None on a machine with only one."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    first, second = cpus[0], cpus[1]
    os.sched_setaffinity(flooded.pid, {first})
    for node in others:
        os.sched_setaffinity(node.pid, {second})
    os.sched_setaffinity(0, {second})
    return first, second


def admitted_get_buckets(node: NodeProcess) -> list[tuple[float, float]]:
    """The node's histogram of ``GET`` answers it served (shed ones are not in it)."""
    _, _, body = node.request("GET", "/metrics")
    return [(float(bound), float(count)) for bound, count in _BUCKET.findall(body.decode())]


def quantile_ms(before: list[tuple[float, float]], after: list[tuple[float, float]], q: float) -> Optional[float]:
    """The upper bound, in ms, of the bucket holding quantile ``q`` of the answers between
    two reads of a cumulative histogram; None when there were none."""
    counts = [(bound, count - (before[i][1] if before else 0.0)) for i, (bound, count) in enumerate(after)]
    if not counts or counts[-1][1] <= 0:
        return None
    return next(bound for bound, count in counts if count >= q * counts[-1][1]) * 1000


class Watch:
    """Every node's view of the members, through ``/metrics`` (never shed), until stopped:
    the looks that saw a member suspect or dead."""

    def __init__(self, nodes: Sequence[NodeProcess]) -> None:
        self.nodes = nodes
        self.looks = 0
        self.unhealthy: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Watch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for node in self.nodes:
                try:
                    _, _, body = node.request("GET", "/metrics", timeout=5)
                except OSError as e:
                    self.unhealthy.append(f"port {node.port} did not answer /metrics: {e}")
                    continue
                self.looks += 1
                self.unhealthy += [f"port {node.port} saw {float(count):g} {state.decode()}"
                                   for state, count in _UNHEALTHY.findall(body) if float(count) > 0]
            self._stop.wait(WATCH_INTERVAL)


def _stats(node: NodeProcess) -> dict:
    return json.loads(node.request("GET", "/dht/stats")[2])


def _loaded(loaded: NodeProcess, connections: int, nodes: Sequence[NodeProcess], cpu: Optional[int],
            measure: Callable[[], None], seconds: int, settings: Settings) -> dict:
    """``measure()`` while wrk sends ``loaded`` ``GET`` of the preloaded keys over
    ``connections``; what wrk got, what the node refused and admitted, and what gossip saw."""
    before = admitted_get_buckets(loaded)
    refused_before = _stats(loaded)["http"]["refused"]["overload"]
    refutations_before = sum(_stats(node)["gossip"]["refutations"] for node in nodes)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(SCRIPTS / "get.lua"),
               loaded.url("/db/"), "--", str(settings.preload)]
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    with Watch(nodes) as watch, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                                 text=True, preexec_fn=pin) as flood:
        threading.Event().wait(FLOOD_LEAD)
        measure()
        output, _ = flood.communicate(timeout=seconds + 60)
    answered = parse_wrk(output)
    return {"connections": connections, "answers_per_s": answered.rate,
            "share_503": answered.status_errors / answered.requests if answered.requests else 0.0,
            "p50_ms": answered.p50_ms, "p99_ms": answered.p99_ms,
            "admitted_p99_ms": quantile_ms(before, admitted_get_buckets(loaded), 0.99),
            "refused_overload": _stats(loaded)["http"]["refused"]["overload"] - refused_before,
            "watch_looks": watch.looks, "unhealthy": watch.unhealthy,
            "refutations": sum(_stats(node)["gossip"]["refutations"] for node in nodes) - refutations_before}


def refusal_cost(scratch: Path, seconds: int) -> dict:
    """What a 503 for load costs: one node whose one place in progress (``--max-requests-in-progress 1``)
    a request with an unfinished body holds, so that every ``GET`` of wrk's is refused;
    the 503s a second and the node's CPU time for each."""
    node = NodeProcess(scratch / "refusing")
    node.start("--storage", "memory", "--max-requests-in-progress", "1", "--body-timeout", str(seconds + 60))
    try:
        with socket.create_connection((node.host, node.port)) as held:
            held.sendall(b"PUT /db/held HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n1")
            wait_for(lambda: _stats(node)["http"]["requests_in_progress"] == 1, 10)
            before = cpu_seconds(node.pid)
            measured = run_wrk(node.url("/db/"), "get.lua", seconds, ["100"], connections=REFUSED_CONNECTIONS)
            used = cpu_seconds(node.pid) - before
    finally:
        node.stop()
    return {"per_s": measured.rate, "share_503": measured.status_errors / measured.requests if measured.requests else 0.0,
            "cpu_us": used / measured.requests * 1e6 if measured.requests else None, "p99_ms": measured.p99_ms}


def run_overload(settings: Settings, scratch: Path, progress: Callable[[str], None] = lambda message: None) -> dict:
    """Start a 3-node cluster in ``scratch``, measure, stop it; the report."""
    affinity = os.sched_getaffinity(0)
    with ExitStack() as stack:
        stack.callback(os.sched_setaffinity, 0, affinity)
        progress("starting a 3-node cluster, N=3")
        nodes = start_cluster(stack, scratch / "overload", replicas=3)
        first, measured = nodes[0], nodes[1]
        cpus = split_processors(first, nodes[1:])
        progress(f"preloading {settings.preload:,} keys")
        preload(nodes, settings.preload)
        results: dict[str, list] = {}
        loads: dict[str, list] = {"busy": [], "flooded": []}
        # The load outlasts its lead and both rows' warm-ups and runs.
        load_seconds = FLOOD_LEAD + 2 * (settings.warmup + settings.seconds) + 2
        phases = list(LOADS)
        for round_ in range(1, settings.rounds + 1):
            for phase in phases[round_ % 3:] + phases[:round_ % 3]:
                def measure(phase=phase, round_=round_) -> None:
                    for operation, script, args in (("GET", "get.lua", lambda p: [str(settings.preload)]),
                                                    ("PUT", "put.lua", lambda p, ph=phase: [f"overload-{ph}-{p}"])):
                        progress(f"round {round_}/{settings.rounds}: {operation} through the second node, {phase}")
                        results.setdefault(f"{operation} {phase}", []).append(
                            warmed(measured.url("/db/"), script, settings, round_, args, pids=[n.pid for n in nodes[1:]]))
                wait_until_quiet()
                if LOADS[phase]:
                    loads[phase].append(_loaded(first, LOADS[phase], nodes, cpus and cpus[0], measure, load_seconds,
                                                settings))
                else:
                    measure()
        rows = [aggregate(f"{operation} {phase}", results[f"{operation} {phase}"])
                for operation in ("GET", "PUT") for phase in LOADS]
    progress("what a 503 costs: one node, every GET refused")
    refused = refusal_cost(scratch, settings.seconds)
    return {"rows": [asdict(row) for row in rows], "loads": loads, "processors": cpus, "refusal": refused,
            "rounds": settings.rounds, "seconds": settings.seconds, "preloaded_keys": settings.preload,
            "command": settings.command}


def format_overload(report: dict) -> str:
    by_name = {row["operation"]: row for row in report["rows"]}
    beyond = ", ".join(f"{operation} {by_name[f'{operation} flooded']['rate'] / by_name[f'{operation} busy']['rate']:.3f}"
                       for operation in ("GET", "PUT")
                       if by_name[f"{operation} flooded"]["rate"] and by_name[f"{operation} busy"]["rate"])
    lines = ["through the second node of three, the first idle (calm), at its capacity (busy) and flooded:",
             *format_rows(report["rows"], "calm"),
             f"flooded as a share of busy: {beyond or '-'}",
             "the first node, wrk GET, each phase:"]
    for phase, loads in report["loads"].items():
        for i, load in enumerate(loads, 1):
            admitted = "-" if load["admitted_p99_ms"] is None else f"{load['admitted_p99_ms']:.0f}"
            lines.append(f"  {phase} {i} (-c{load['connections']}): {load['answers_per_s']:,.0f} answers/s, "
                         f"{load['share_503']:.1%} of them 503, p50 {load['p50_ms']:.1f} ms and p99 "
                         f"{load['p99_ms']:.1f} ms over every answer, admitted GET p99 <= {admitted} ms; gossip: "
                         f"{len(load['unhealthy'])} looks of {load['watch_looks']} saw a member suspect or dead, "
                         f"{load['refutations']} refutations")
            lines += [f"     {seen}" for seen in load["unhealthy"][:5]]
    refusal = report["refusal"]
    lines.append(f"a 503 for load: {refusal['per_s']:,.0f} a second ({refusal['share_503']:.1%} of the answers), "
                 f"{refusal['cpu_us']:.1f} us of the node's CPU each, p99 {refusal['p99_ms']:.1f} ms "
                 f"(one node, wrk -c{REFUSED_CONNECTIONS}, every GET refused)")
    cpus = report["processors"]
    lines.append(f"processors: the first node and its wrk on {cpus[0]}, the other nodes and their wrk on {cpus[1]}"
                 if cpus else "processors: one only, shared by everything (the flood's CPU slows the others too)")
    lines.append(f"{report['rounds']} rounds of {report['seconds']} s, the three phases in turn; medians; "
                 f"{report['preloaded_keys']:,} keys preloaded; N=3")
    return "\n".join(lines)
