"""The gossipdht benchmark: local clusters and a bare twisted.web server driven by ``wrk``.

``python -m gossipdht.tools.bench`` (see ``__main__``) starts everything itself, measures each
operation once per round, rounds interleaved so that a slow minute of the machine hurts
every operation alike, each alone (every other system of the run paused meanwhile:
``isolation``), and reports the median of the rounds, with the rate of a bare
twisted.web server answering a constant (``A``) as the yardstick, and etcd (``etcd``)
beside it when it is installed.  The ``wrk`` scripts
(``*.lua``) live next to this module; each prints one ``BENCH {json}`` line when done.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import shutil
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

from gossipdht.tools.bench import etcd
from gossipdht.tools.bench.cputime import QUIET_SECONDS, cpu_seconds, run_timed, wait_until_quiet
from gossipdht.tools.bench.isolation import System, alone
from gossipdht.tools.bench.measurement import (
    ERROR_LIMIT,
    GENERATOR_LIMIT,
    Measurement,
    Row,
    Unavailable,
    aggregate,
    generator_flagged,
    parse_loader,
    parse_wrk,
)
from gossipdht.tools.bench.postal import POSTAL_ROWS, postal_data, prefixed_copy
from gossipdht.tools.localcluster import join, peers, wait_for
from gossipdht.tools.nodeprocess import HOST, NodeProcess, free_port, stop_process

SCRIPTS = Path(__file__).resolve().parent
CONNECTIONS = 16
POSTAL_THREADS = 4
PRELOAD_BATCH = 1000
START_TIMEOUT = 15.0
LOADER_TIMEOUT = 600.0
TSV = "text/tab-separated-values"
#: A system resumed after a pause must answer again (a cluster: every node sees every
#: member alive) within this long, or the round is not measured.
SETTLE_SECONDS = 30.0
ERRORS_NOTE = f"! more than {ERROR_LIMIT:.0%} of the requests failed"
GENERATOR_NOTE = (f"! the load generator used more than {GENERATOR_LIMIT:.0%} of a core: "
                  "it may be what limits the rate")
UNITS_NOTE = (f"postal PUT: rows/s, one row per PUT, {POSTAL_THREADS} threads x {CONNECTIONS // POSTAL_THREADS} "
              "connections on nodes 1, 2, 3, 1, cycling over the rows; postal load: keys/s as the loader reports them; "
              "PUT (sync full): a third N=3 cluster with --sync full (each commit fsynced, as etcd's writes are); "
              "etcd: 3 members with etcd's defaults (a write fsynced by a quorum, linearizable reads), "
              "driven through the member named below, as PUT and GET are through node 1; "
              "gen CPU: the load generator's own CPU time (user + system) over its run, in % of one core "
              "(wrk; for postal load, the loader); each row measured alone, every other system paused")


@dataclass(frozen=True)
class Settings:
    """How long and how hard a benchmark runs."""

    rounds: int
    seconds: int
    warmup: int
    preload: int
    data: Path
    directory: Optional[Path] = None
    command: str = "python -m gossipdht.tools.bench"
    #: The etcd member the etcd rows drive: ``leader`` or ``follower`` (``etcd.CHOICES``).
    etcd_member: str = "leader"


@dataclass(frozen=True)
class Operation:
    """One benchmark row: a name, the system it drives (a name of ``Started.systems``) and
    how to measure it in a round."""

    name: str
    system: str
    measure: Callable[[int], Measurement]


def build_report(rows: Sequence[Row], meta: dict) -> dict:
    """The report as one JSON-ready object; ``A`` is the median rate of the first row."""
    a = rows[0].rate
    meta = {**meta, "A": a, "A_is": f"the median {rows[0].operation} req/s over the rounds"}
    return {
        "meta": meta,
        "rows": [
            {**asdict(row), "error_share": row.error_share, "flagged": row.flagged,
             "ratio": row.rate / a if row.rate is not None and a else None}
            for row in rows
        ],
    }


# -- the table ---------------------------------------------------------------------------------------

COLUMNS = ("operation", "req/s", "p50 ms", "p99 ms", "ratio", "gen CPU", "errors")


def _number(value: Optional[float], digits: int) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def generator_cell(share: Optional[float]) -> str:
    """The load generator's CPU share of a core, ``!`` after it when over ``GENERATOR_LIMIT``."""
    return "" if share is None else f"{share:.0%}" + (" !" if generator_flagged(share) else "")


def _cells(row: dict) -> tuple[str, ...]:
    if row["rate"] is None:
        return (row["operation"], "n/a", "", "", "", "", "")
    errors = f"{row['errors']:,}"
    if row["errors"]:
        errors += f" ({row['error_share']:.1%})"
    if row["flagged"]:
        errors += " !"
    ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f} A"
    return (row["operation"], _number(row["rate"], 0), _number(row["p50_ms"], 2),
            _number(row["p99_ms"], 2), ratio, generator_cell(row["generator_cpu"]), errors)


def format_table(report: dict) -> str:
    """The header lines, the table, its notes and the command that reproduces it."""
    meta = report["meta"]
    a = "n/a" if meta["A"] is None else f"{meta['A']:,.0f} req/s"
    lines = [
        f"gossipdht benchmark {meta['date']}: {meta['cores']} cores, Python {meta['python']}, wrk {meta['wrk']}"
        + (f", etcd {meta['etcd']}" if meta.get("etcd") else ""),
        f"{meta['rounds']} round(s) of {meta['seconds']} s per operation after {meta['warmup_seconds']} s of warm-up, "
        f"{meta['connections']} connections; medians over the rounds; A = {a}, {meta['A_is']}",
    ]
    table = [COLUMNS] + [_cells(row) for row in report["rows"]]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(COLUMNS))]
    for cells in table:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:]))
        lines.append("  ".join([first, *rest]).rstrip())
    lines.append(f"notes: {UNITS_NOTE}")
    if any(row["flagged"] for row in report["rows"]):
        lines.append(f"  {ERRORS_NOTE}")
    if any(generator_flagged(row["generator_cpu"]) for row in report["rows"]):
        lines.append(f"  {GENERATOR_NOTE}")
    lines += [f"  {row['operation']}: driven through {row['via']}" for row in report["rows"] if row["via"]]
    lines += [f"  {row['operation']}: {row['note']}" for row in report["rows"] if row["note"]]
    lines.append(f"reproduce: {meta['command']}")
    return "\n".join(lines)


# -- processes -------------------------------------------------------------------------------------


def wrk_path() -> Optional[str]:
    return shutil.which("wrk")


def wrk_version() -> str:
    """``4.1.0`` or what this wrk calls itself (``wrk -v`` prints it, then exits 1)."""
    run = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    match = re.search(r"wrk (\S+)", run.stdout + run.stderr)
    return match.group(1) if match else "unknown"


def run_wrk(url: str, script: str, seconds: int, args: Sequence[str] = (), threads: int = 1,
            env: Optional[dict[str, str]] = None, connections: int = CONNECTIONS) -> Measurement:
    """One ``wrk --latency`` run with one of our scripts, and wrk's own CPU share;
    Unavailable when wrk fails."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "-s", str(SCRIPTS / script), url, "--", *args]
    try:
        run = run_timed(command, seconds + 60, {**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        raise Unavailable(f"wrk ran over {seconds + 60} s") from None
    try:
        return replace(parse_wrk(run.stdout), generator_cpu=run.cpu_share)
    except ValueError:
        raise Unavailable(f"wrk (status {run.status}): {run.last_line()}") from None


def run_loader(path: Path, node: NodeProcess) -> Measurement:
    """``python -m gossipdht load FILE --node HOST:PORT``, timed by the loader itself,
    and the loader's CPU share."""
    command = [sys.executable, "-m", "gossipdht", "load", str(path), "--node", f"{node.host}:{node.port}"]
    try:
        run = run_timed(command, LOADER_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"the loader ran over {LOADER_TIMEOUT:.0f} s") from None
    try:
        return replace(parse_loader(run.stdout), generator_cpu=run.cpu_share)
    except ValueError:
        raise Unavailable(f"python -m gossipdht load exited with status {run.status}: {run.last_line()}") from None


def start_baseline(stack: ExitStack, directory: Path, kind: str = "bare", keys: int = 0) -> tuple[int, int]:
    """A reference server (``baseline.py``: ``bare``, ``quiet`` or ``klein`` holding the
    first ``keys`` preloaded keys) in a child process: the port it answers on, its pid."""
    port = free_port()
    log = stack.enter_context(open(directory / f"baseline-{kind}.log", "wb"))
    process = subprocess.Popen([sys.executable, "-m", "gossipdht.tools.bench.baseline", str(port), kind, str(keys)],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    stack.callback(stop_process, process)
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the {kind} reference server did not start; see {directory / f'baseline-{kind}.log'}")
        time.sleep(0.05)
    return port, process.pid


def _answers(port: int) -> bool:
    """Whether an HTTP server answers on ``port``, whatever the status."""
    connection = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        connection.request("GET", "/")
        connection.getresponse()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def start_cluster(stack: ExitStack, directory: Path, replicas: int, count: int = 3,
                  options: Callable[[NodeProcess], Sequence[str]] = lambda node: (),
                  tls: Optional[ssl.SSLContext] = None) -> list[NodeProcess]:
    """``count`` joined nodes with ``--replicas`` and ``options(node)``, each stopped when
    ``stack`` closes (``tls``: they serve HTTPS, see ``NodeProcess``).

    Each node is registered for stopping before it starts (rather than through
    ``start_nodes``), so that a failure half-way leaves no process behind."""
    nodes = []
    for i in range(count):
        node = NodeProcess(directory / f"node-{i + 1}", tls=tls)
        stack.callback(node.stop)
        nodes.append(node.start("--replicas", str(replicas), *options(node)))
    for node in nodes[1:]:
        join(node, nodes[0])
    wait_for(lambda: all(len(peers(n)) == count for n in nodes), 30)
    return nodes


def preloaded(i: int) -> tuple[str, str]:
    """The ``i``-th preloaded key and its value, which the ``GET`` rows read."""
    return f"bench-pre-{i}", f"{i:016x}"


def preload_batches(count: int) -> list[list[tuple[str, str]]]:
    """Preloaded keys 0 .. ``count - 1``, ``PRELOAD_BATCH`` to a batch."""
    return [[preloaded(i) for i in range(first, min(first + PRELOAD_BATCH, count))]
            for first in range(0, count, PRELOAD_BATCH)]


def preload(nodes: Sequence[NodeProcess], count: int) -> None:
    """Keys ``bench-pre-0`` .. ``bench-pre-<count - 1>`` through ``POST /db``, batches spread over the nodes."""
    batches = preload_batches(count)
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(lambda i: _post_batch(nodes[i % len(nodes)], batches[i]), range(len(batches))))
    status, _, _ = nodes[0].request("GET", f"/db/{preloaded(count // 2)[0]}")
    if status != 200:
        raise RuntimeError(f"a preloaded key reads back {status}, not 200")


def _post_batch(node: NodeProcess, items: list[tuple[str, str]]) -> None:
    body = "".join(f"{key}\t{value}\n" for key, value in items).encode()
    status, _, answer = node.request("POST", "/db", body, {"Content-Type": TSV}, timeout=120)
    if status != 200:
        raise RuntimeError(f"preloading through port {node.port}: {status} {answer[:300]!r}")


# -- the systems, each measured alone ------------------------------------------------------------

REFERENCES = ("bare", "quiet", "klein")
#: The clusters by name (their directory too): ``--replicas`` and the options of each node.
CLUSTERS = {"cluster": (3, ()), "postal-cluster": (2, ()), "full-sync-cluster": (3, ("--sync", "full"))}


@dataclass
class Started:
    """What a run started: every system by name (``isolation``: paused while another is
    measured), and what the rows drive: the reference servers' ports by kind, the
    clusters' nodes by name, and etcd's members (or why there are none)."""

    systems: dict[str, System] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    clusters: dict[str, list[NodeProcess]] = field(default_factory=dict)
    etcd_members: Union[etcd.Members, Unavailable] = Unavailable("etcd was not started")


def settling(what: str, settled: Callable[[], bool]) -> Callable[[], None]:
    """A ``System.settle``: polls ``settled`` until it holds; Unavailable after ``SETTLE_SECONDS``."""
    def settle() -> None:
        try:
            wait_for(settled, SETTLE_SECONDS)
        except TimeoutError:
            raise Unavailable(f"{what} did not settle within {SETTLE_SECONDS:.0f} s of being resumed") from None
    return settle


def members_alive(node: NodeProcess, count: int) -> bool:
    """Whether ``node`` answers, and sees ``count`` members all alive (none suspected)."""
    try:
        status, _, body = node.request("GET", "/dht/members", timeout=2.0)
    except (OSError, http.client.HTTPException):
        return False
    return status == 200 and [member["state"] for member in json.loads(body)] == ["alive"] * count


def cluster_system(name: str, nodes: Sequence[NodeProcess]) -> System:
    """A cluster's nodes, settled once every one sees every other alive."""
    return System(name, tuple(node.pid for node in nodes),
                  settling(f"the {name}", lambda: all(members_alive(node, len(nodes)) for node in nodes)))


def etcd_system(members: Union[etcd.Members, Unavailable]) -> System:
    """etcd's members, settled once every one is healthy; without members, a system whose
    ``settle`` says why, so that its rows cost no wait."""
    def settle() -> None:
        if isinstance(members, Unavailable):
            raise members
        try:
            etcd.wait_healthy(members, SETTLE_SECONDS)
        except etcd.EtcdError as e:
            raise Unavailable(f"etcd: {e}") from None
    return System("etcd", () if isinstance(members, Unavailable) else members.pids, settle)


def start_systems(stack: ExitStack, settings: Settings, scratch: Path, wanted: Iterable[str], started: Started,
                  progress: Callable[[str], None]) -> None:
    """The ``wanted`` systems into ``started``: reference servers, clusters (the N=3 one
    preloaded) and etcd (preloaded alike), each stopped when ``stack`` closes."""
    wanted = set(wanted)
    progress(f"starting what the rows drive: {', '.join(sorted(wanted))}")
    for kind in REFERENCES:
        if kind in wanted:
            port, pid = start_baseline(stack, scratch, kind, settings.preload)
            started.ports[kind] = port
            started.systems[kind] = System(kind, (pid,), settling(f"the {kind} reference server",
                                                                  lambda port=port: _answers(port)))
    for name, (replicas, options) in CLUSTERS.items():
        if name in wanted:
            nodes = start_cluster(stack, scratch / name, replicas=replicas, options=lambda node, o=options: o)
            started.clusters[name] = nodes
            started.systems[name] = cluster_system(name, nodes)
    if "cluster" in wanted:
        progress(f"preloading {settings.preload:,} keys")
        preload(started.clusters["cluster"], settings.preload)
    if "etcd" in wanted:
        progress(f"starting etcd, {etcd.MEMBERS} members, with the same keys")
        started.etcd_members = start_etcd_preloaded(stack, scratch, settings.preload)
        started.systems["etcd"] = etcd_system(started.etcd_members)


def measure_alone(system: System, systems: Iterable[System], measure: Callable[[], Measurement],
                  progress: Callable[[str], None]) -> Union[Measurement, Unavailable]:
    """``measure()`` while every other of ``systems`` is paused, once ``system`` has settled
    and the machine is quiet; or the Unavailable that says why it could not."""
    try:
        with alone(system, systems):
            if not wait_until_quiet():
                progress(f"measuring anyway: the machine was not quiet within {QUIET_SECONDS:.0f} s "
                         "(or has no /proc/stat)")
            measured = measure()
    except Unavailable as e:
        return e
    if generator_flagged(measured.generator_cpu):
        progress(f"warning: the load generator used {measured.generator_cpu:.0%} of a core: "
                 "it may be what limits the rate")
    return measured


# -- the benchmark ----------------------------------------------------------------------------------


def warmed(url: str, script: str, settings: Settings, round_: int,
           args: Callable[[str], list[str]] = lambda phase: [], threads: int = 1,
           env: Optional[dict[str, str]] = None, pids: Sequence[int] = ()) -> Measurement:
    """A discarded warm-up run, then the measured one; ``args(phase)`` gets ``w<round>``
    for the warm-up and ``r<round>`` for the measurement, so that written keys never repeat.
    With the ``pids`` of the system driven, also the CPU they spent a request meanwhile:
    a cost that a rate shows only through whatever else the machine did."""
    run_wrk(url, script, settings.warmup, args(f"w{round_}"), threads, env)
    before = sum(cpu_seconds(pid) for pid in pids)
    measured = run_wrk(url, script, settings.seconds, args(f"r{round_}"), threads, env)
    if not pids or not measured.requests:
        return measured
    used = sum(cpu_seconds(pid) for pid in pids) - before
    return replace(measured, system_cpu_us=used / measured.requests * 1e6)


def start_etcd_preloaded(stack: ExitStack, scratch: Path, count: int) -> Union[etcd.Members, Unavailable]:
    """etcd's members, holding the keys that ``preload`` writes; or why etcd is not measured."""
    if etcd.etcd_path() is None:
        return Unavailable(etcd.INSTALL)
    try:
        members = etcd.start_etcd(stack, scratch, START_TIMEOUT)
        port = members.ports[0]
        etcd.put_each(port, [preloaded(i) for i in range(count)])
        key, value = preloaded(count // 2)
        if etcd.value(port, key) != value:
            raise etcd.EtcdError("a preloaded key does not read back")
    except etcd.EtcdError as e:
        return Unavailable(f"etcd: {e}")
    return members


def etcd_role(members: etcd.Members, port: int) -> str:
    try:
        return "leader" if etcd.leader(members) == port else "follower"
    except etcd.EtcdError as e:
        raise Unavailable(f"etcd: {e}") from None


def on_etcd(settings: Settings, members: Union[etcd.Members, Unavailable], round_: int,
            args: Callable[[str], list[str]]) -> Measurement:
    """``etcd.lua`` through the member ``settings.etcd_member`` asks for, found anew each
    round; ``via`` names it and its role, at the start and, when it changed, at the end."""
    if isinstance(members, Unavailable):
        raise members
    try:
        port = etcd.choose(members, settings.etcd_member)
    except etcd.EtcdError as e:
        raise Unavailable(f"etcd: {e}") from None
    measured = warmed(f"http://{HOST}:{port}", "etcd.lua", settings, round_, args)
    at_end = etcd_role(members, port)
    role = settings.etcd_member if at_end == settings.etcd_member else f"{settings.etcd_member}, {at_end} at the end"
    return replace(measured, via=f"{members.name(port)} ({role})")


def operations(settings: Settings, scratch: Path, started: Started, postal: Path) -> list[Operation]:
    """The rows of the table, in order; the first one is A.  Each looks up what it drives
    in ``started`` when it measures (``start_systems`` fills it); the ``PUT (sync full)``
    row's cluster runs with ``--sync full``, an fsync per commit, as etcd makes one per write."""
    def reference(kind: str, path: str = "/") -> str:
        return f"http://{HOST}:{started.ports[kind]}{path}"

    def db(cluster: str) -> str:
        return started.clusters[cluster][0].url("/db/")

    def postal_put(round_: int) -> Measurement:
        nodes = started.clusters["postal-cluster"]
        return warmed(nodes[0].url("/"), "load.lua", settings, round_,
                      lambda phase: [str(postal), f"put-{phase}-", str(POSTAL_THREADS)], POSTAL_THREADS,
                      {"BENCH_NODES": " ".join(f"{n.host}:{n.port}" for n in nodes)})

    def load(round_: int) -> Measurement:
        return run_loader(prefixed_copy(postal, scratch / f"load-r{round_}.tsv", f"load-r{round_}-"),
                          started.clusters["postal-cluster"][0])

    def etcd_put(round_: int) -> Measurement:
        measured = on_etcd(settings, started.etcd_members, round_, lambda phase: ["put", f"etcd-{phase}"])
        try:
            stored = etcd.count(started.etcd_members.ports[0], f"etcd-r{round_}-")
        except etcd.EtcdError as e:
            raise Unavailable(f"etcd: {e}") from None
        if stored < measured.requests - measured.errors:
            raise Unavailable(f"etcd holds {stored} keys of the {measured.requests - measured.errors} written: "
                              "etcd.lua encodes keys otherwise than Python")
        return measured

    preloaded_keys = lambda phase: [str(settings.preload)]  # noqa: E731
    return [
        Operation("baseline GET", "bare", lambda r: warmed(reference("bare"), "static.lua", settings, r)),
        Operation("baseline PUT", "bare", lambda r: warmed(reference("bare", "/put/"), "put.lua", settings, r,
                                                           lambda p: [p])),
        Operation("no access log GET", "quiet", lambda r: warmed(reference("quiet"), "static.lua", settings, r)),
        Operation("Klein dict PUT", "klein", lambda r: warmed(reference("klein", "/db/"), "put.lua", settings, r,
                                                             lambda p: [f"k-{p}"])),
        Operation("Klein dict GET", "klein", lambda r: warmed(reference("klein", "/db/"), "get.lua", settings, r,
                                                             preloaded_keys)),
        Operation("PUT", "cluster", lambda r: warmed(db("cluster"), "put.lua", settings, r, lambda p: [f"bench-{p}"])),
        Operation("GET", "cluster", lambda r: warmed(db("cluster"), "get.lua", settings, r, preloaded_keys)),
        Operation("PUT (sync full)", "full-sync-cluster",
                  lambda r: warmed(db("full-sync-cluster"), "put.lua", settings, r, lambda p: [f"bench-{p}"])),
        Operation("etcd PUT", "etcd", etcd_put),
        Operation("etcd GET", "etcd", lambda r: on_etcd(settings, started.etcd_members, r,
                                                        lambda p: ["get", str(settings.preload)])),
        Operation("postal PUT (N=2)", "postal-cluster", postal_put),
        Operation("postal load (N=2)", "postal-cluster", load),
    ]


def row_names(settings: Settings) -> list[str]:
    """The names of the rows, in the table's order."""
    return [op.name for op in operations(settings, Path(), Started(), Path())]


def measure_rounds(ops: Sequence[Operation], systems: dict[str, System], rounds: int,
                   progress: Callable[[str], None]) -> list[Row]:
    """Every operation once per round, rounds one after the other, each alone (``measure_alone``)."""
    results: dict[str, list[Union[Measurement, Unavailable]]] = {op.name: [] for op in ops}
    for round_ in range(1, rounds + 1):
        for op in ops:
            progress(f"round {round_}/{rounds}: {op.name}")
            results[op.name].append(measure_alone(systems[op.system], systems.values(),
                                                  partial(op.measure, round_), progress))
    return [aggregate(op.name, results[op.name]) for op in ops]


def run(settings: Settings, scratch: Path, progress: Callable[[str], None] = lambda message: None,
        only: Optional[str] = None) -> dict:
    """Start the reference servers, the three clusters and etcd in ``scratch`` (``only``:
    just the system of that row), measure every row (or that one), stop everything; the report."""
    with ExitStack() as stack:
        postal = postal_data(settings.data, scratch)
        started = Started()
        ops = [op for op in operations(settings, scratch, started, postal) if only in (None, op.name)]
        if not ops:
            raise ValueError(f"no row is named {only!r}")
        start_systems(stack, settings, scratch, [op.system for op in ops], started, progress)
        rows = measure_rounds(ops, started.systems, settings.rounds, progress)
    return build_report(rows, _meta(settings, postal))


def _meta(settings: Settings, postal: Path) -> dict:
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "wrk": wrk_version(),
        "etcd": etcd.etcd_version() if etcd.etcd_path() else None,
        "rounds": settings.rounds,
        "seconds": settings.seconds,
        "warmup_seconds": settings.warmup,
        "connections": CONNECTIONS,
        "preloaded_keys": settings.preload,
        "etcd_member": settings.etcd_member,
        "isolation": "each row measured alone: every other system of the run paused (SIGSTOP) meanwhile",
        "postal_data": str(postal) if postal == settings.data else f"generated, {POSTAL_ROWS} rows",
        "command": settings.command,
    }
