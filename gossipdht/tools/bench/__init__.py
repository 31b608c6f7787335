"""The gossipdht benchmark: local clusters and a bare twisted.web server driven by ``wrk``.

``python -m gossipdht.tools.bench`` (see ``__main__``) starts everything itself, measures each
operation once per round, rounds interleaved so that a slow minute of the machine hurts
every operation alike, and reports the median of the rounds, with the rate of a bare
twisted.web server answering a constant (``A``) as the yardstick, and etcd (``etcd``)
beside it when it is installed.  The ``wrk`` scripts
(``*.lua``) live next to this module; each prints one ``BENCH {json}`` line when done.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import random
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from gossipdht.tools.bench import etcd
from gossipdht.tools.localcluster import join, peers, wait_for
from gossipdht.tools.nodeprocess import HOST, NodeProcess, free_port, stop_process

SCRIPTS = Path(__file__).resolve().parent
#: The shared data set, ``../shared/data`` from the repository root; generated when absent.
DEFAULT_DATA = SCRIPTS.parents[2] / "shared" / "data" / "se-postal-codes.tsv"
POSTAL_ROWS = 16_710
CONNECTIONS = 16
POSTAL_THREADS = 4
#: A row with more failed requests than this share is flagged.
ERROR_LIMIT = 0.01
PRELOAD_BATCH = 1000
START_TIMEOUT = 15.0
LOADER_TIMEOUT = 600.0
TSV = "text/tab-separated-values"
BENCH_LINE = "BENCH "
LOADER_LINE = re.compile(r"(\d+) keys in ([\d.]+) s")
LOADER_FAILED = re.compile(r"(\d+) not stored")
#: Each measurement starts once the machine used under this share of its CPU over
#: ``QUIET_SAMPLE_SECONDS`` (or after ``QUIET_SECONDS``): etcd or a node still busy after
#: the row before would slow the next row, whichever it is.
QUIET_SHARE = 0.10
QUIET_SAMPLE_SECONDS = 0.5
QUIET_SECONDS = 60.0
ERRORS_NOTE = f"! more than {ERROR_LIMIT:.0%} of the requests failed"
UNITS_NOTE = (f"postal PUT: rows/s, one row per PUT, {POSTAL_THREADS} threads x {CONNECTIONS // POSTAL_THREADS} "
              "connections on nodes 1, 2, 3, 1, cycling over the rows; postal load: keys/s as the loader reports them; "
              "PUT (sync full): a third N=3 cluster with --sync full (each commit fsynced, as etcd's writes are); "
              "etcd: 3 members with etcd's defaults (a write fsynced by a quorum, linearizable reads), "
              "driven through member 1 as PUT and GET are through node 1")


class Unavailable(Exception):
    """An operation could not be measured in a round; the message says why."""


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


@dataclass(frozen=True)
class Measurement:
    """One run of one operation.  ``errors`` includes ``status_errors`` (status 400 or more)."""

    requests: int
    seconds: float
    errors: int = 0
    status_errors: int = 0
    p50_ms: Optional[float] = None
    p99_ms: Optional[float] = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Row:
    """One operation over all rounds: medians of the rounds, errors summed."""

    operation: str
    rate: Optional[float]
    p50_ms: Optional[float]
    p99_ms: Optional[float]
    requests: int
    errors: int
    status_errors: int
    note: str = ""

    @property
    def error_share(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def flagged(self) -> bool:
        return self.error_share > ERROR_LIMIT


@dataclass(frozen=True)
class Operation:
    """One benchmark row: a name and how to measure it."""

    name: str
    measure: Callable[[int], Measurement]


# -- parsing and aggregation -----------------------------------------------------------------------


def parse_wrk(output: str) -> Measurement:
    """The measurement in the ``BENCH {json}`` line that ``report.lua`` prints."""
    for line in output.splitlines():
        if line.startswith(BENCH_LINE):
            data = json.loads(line[len(BENCH_LINE):])
            return Measurement(
                requests=int(data["requests"]), seconds=float(data["seconds"]),
                errors=int(data["errors"]), status_errors=int(data["status_errors"]),
                p50_ms=float(data["p50_ms"]), p99_ms=float(data["p99_ms"]),
            )
    raise ValueError("no BENCH line in the output of wrk")


def parse_loader(output: str) -> Measurement:
    """Keys and seconds from the loader's last line, ``16710 keys in 0.52 s: 32,135 keys/s``,
    which ends in ``, 3 not stored`` when some keys failed.  As in wrk's count, the
    failed keys are requests too, and errors."""
    lines = output.strip().splitlines()
    match = LOADER_LINE.search(lines[-1]) if lines else None
    if match is None:
        raise ValueError("the loader's last line does not say 'N keys in S s'")
    failed = LOADER_FAILED.search(lines[-1])
    errors = int(failed.group(1)) if failed else 0
    return Measurement(requests=int(match.group(1)) + errors, seconds=float(match.group(2)), errors=errors)


def _median(values: Sequence[Optional[float]]) -> Optional[float]:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def aggregate(operation: str, results: Sequence[Union[Measurement, Unavailable]]) -> Row:
    """Each metric's median over the rounds that measured it; rounds that could not are noted."""
    measured = [r for r in results if isinstance(r, Measurement)]
    missing = [str(r) for r in results if isinstance(r, Unavailable)]
    note = ""
    if missing:
        note = f"n/a in {len(missing)} of {len(results)} rounds: {missing[-1]}" if measured else f"n/a: {missing[-1]}"
    return Row(
        operation=operation,
        rate=_median([m.rate for m in measured]),
        p50_ms=_median([m.p50_ms for m in measured]),
        p99_ms=_median([m.p99_ms for m in measured]),
        requests=sum(m.requests for m in measured),
        errors=sum(m.errors for m in measured),
        status_errors=sum(m.status_errors for m in measured),
        note=note,
    )


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

COLUMNS = ("operation", "req/s", "p50 ms", "p99 ms", "ratio", "errors")


def _number(value: Optional[float], digits: int) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _cells(row: dict) -> tuple[str, ...]:
    if row["rate"] is None:
        return (row["operation"], "n/a", "", "", "", "")
    errors = f"{row['errors']:,}"
    if row["errors"]:
        errors += f" ({row['error_share']:.1%})"
    if row["flagged"]:
        errors += " !"
    ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f} A"
    return (row["operation"], _number(row["rate"], 0), _number(row["p50_ms"], 2),
            _number(row["p99_ms"], 2), ratio, errors)


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
    lines += [f"  {row['operation']}: {row['note']}" for row in report["rows"] if row["note"]]
    lines.append(f"reproduce: {meta['command']}")
    return "\n".join(lines)


# -- data ------------------------------------------------------------------------------------------

_STEMS = ("Sunds", "Öst", "Väst", "Norr", "Söder", "Lind", "Berg", "Ek", "Hol", "Stor", "Kungs", "Malm",
          "Ny", "Gran", "Björk", "Ål", "Sköv", "Hälle", "Tår", "Vik")
_ENDINGS = ("vall", "hammar", "köping", "berga", "torp", "sund", "by", "näs", "hus", "ås", "fors", "dal",
            "holm", "ö")
_QUALIFIERS = ("", "", "Norra ", "Södra ", "Lilla ", "Stora ")


def postal_lines(count: int = POSTAL_ROWS, seed: int = 1) -> list[str]:
    """Lines shaped like ``se-postal-codes.tsv``: a distinct 5-digit code, a tab and a
    Swedish-looking locality (UTF-8), each locality shared by about ten codes."""
    rng = random.Random(seed)
    places = sorted({rng.choice(_QUALIFIERS) + rng.choice(_STEMS) + rng.choice(_ENDINGS)
                     for _ in range(max(1, count // 10))})
    codes = rng.sample(range(10_000, 100_000), count)
    return [f"{code}\t{rng.choice(places)}" for code in codes]


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def prefixed_copy(source: Path, target: Path, prefix: str) -> Path:
    """A copy of a TSV file with ``prefix`` before every key, so that each round writes new keys."""
    lines = source.read_text(encoding="utf-8").splitlines()
    return write_lines(target, [prefix + line for line in lines if line])


def postal_data(data: Path, scratch: Path) -> Path:
    """The shared postal data set, or a generated file of the same shape when it is absent."""
    return data if data.is_file() else write_lines(scratch / "postal-generated.tsv", postal_lines())


# -- the machine -------------------------------------------------------------------------------------


def cpu_times(stat: str) -> tuple[int, int]:
    """Busy and total time of all CPUs, in ticks, from the text of ``/proc/stat``."""
    ticks = [int(field) for field in stat.split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
    total = sum(ticks[:8])  # guest time is counted in user time already
    return total - idle, total


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time that was busy between two ``cpu_times``."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def wait_until_quiet(sample_seconds: float = QUIET_SAMPLE_SECONDS, timeout: float = QUIET_SECONDS,
                     read_stat: Callable[[], str] = lambda: Path("/proc/stat").read_text(),
                     sleep: Callable[[float], None] = time.sleep) -> bool:
    """Until the machine used under ``QUIET_SHARE`` of its CPU over ``sample_seconds``;
    False when it did not within ``timeout`` (or cannot tell: no ``/proc/stat``)."""
    waited = 0.0
    while waited < timeout:
        try:
            before = cpu_times(read_stat())
            sleep(sample_seconds)
            after = cpu_times(read_stat())
        except OSError:
            return False
        waited += sample_seconds
        if busy_share(before, after) < QUIET_SHARE:
            return True
    return False


# -- processes -------------------------------------------------------------------------------------


def wrk_path() -> Optional[str]:
    return shutil.which("wrk")


def wrk_version() -> str:
    """``4.1.0`` or what this wrk calls itself (``wrk -v`` prints it, then exits 1)."""
    run = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    match = re.search(r"wrk (\S+)", run.stdout + run.stderr)
    return match.group(1) if match else "unknown"


def run_wrk(url: str, script: str, seconds: int, args: Sequence[str] = (), threads: int = 1,
            env: Optional[dict[str, str]] = None) -> Measurement:
    """One ``wrk --latency`` run with one of our scripts; Unavailable when wrk fails."""
    command = ["wrk", f"-t{threads}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
               "-s", str(SCRIPTS / script), url, "--", *args]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                             env={**os.environ, **(env or {})})
        return parse_wrk(run.stdout)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"wrk ran over {seconds + 60} s") from None
    except ValueError:
        tail = (run.stderr or run.stdout).strip().splitlines()
        raise Unavailable(f"wrk (status {run.returncode}): {tail[-1] if tail else 'no output'}") from None


def run_loader(path: Path, node: NodeProcess) -> Measurement:
    """``python -m gossipdht load FILE --node HOST:PORT``, timed by the loader itself."""
    command = [sys.executable, "-m", "gossipdht", "load", str(path), "--node", f"{node.host}:{node.port}"]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=LOADER_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"the loader ran over {LOADER_TIMEOUT:.0f} s") from None
    try:
        return parse_loader(run.stdout)
    except ValueError:
        tail = (run.stderr or run.stdout).strip().splitlines()
        raise Unavailable(f"python -m gossipdht load exited with status {run.returncode}: "
                          f"{tail[-1] if tail else 'no output'}") from None


def start_baseline(stack: ExitStack, directory: Path, kind: str = "bare", keys: int = 0) -> int:
    """A reference server (``baseline.py``: ``bare``, ``quiet`` or ``klein`` holding the
    first ``keys`` preloaded keys) in a child process, answering on the returned port."""
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
    return port


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


# -- the benchmark ----------------------------------------------------------------------------------


def warmed(url: str, script: str, settings: Settings, round_: int,
           args: Callable[[str], list[str]] = lambda phase: [], threads: int = 1,
           env: Optional[dict[str, str]] = None) -> Measurement:
    """A discarded warm-up run, then the measured one; ``args(phase)`` gets ``w<round>``
    for the warm-up and ``r<round>`` for the measurement, so that written keys never repeat."""
    run_wrk(url, script, settings.warmup, args(f"w{round_}"), threads, env)
    return run_wrk(url, script, settings.seconds, args(f"r{round_}"), threads, env)


def start_etcd_preloaded(stack: ExitStack, scratch: Path, count: int) -> Union[int, Unavailable]:
    """etcd's member 1 client port, its members holding the keys that ``preload`` writes;
    or why etcd is not measured."""
    if etcd.etcd_path() is None:
        return Unavailable(etcd.INSTALL)
    try:
        port = etcd.start_etcd(stack, scratch, START_TIMEOUT, PRELOAD_BATCH)
        for batch in preload_batches(count):
            etcd.put_many(port, batch)
        key, value = preloaded(count // 2)
        if etcd.value(port, key) != value:
            raise etcd.EtcdError("a preloaded key does not read back")
    except etcd.EtcdError as e:
        return Unavailable(f"etcd: {e}")
    return port


def operations(settings: Settings, scratch: Path, references: dict[str, int], cluster: Sequence[NodeProcess],
               postal_cluster: Sequence[NodeProcess], postal: Path,
               etcd_port: Union[int, Unavailable], full_sync_cluster: Sequence[NodeProcess]) -> list[Operation]:
    """The rows of the table, in order; the first one is A.  ``references`` are the
    ports of the reference servers by kind (``start_baseline``); ``full_sync_cluster``
    runs with ``--sync full``, an fsync per commit, as etcd makes one per write."""
    base, quiet, klein = (f"http://{HOST}:{references[kind]}" for kind in ("bare", "quiet", "klein"))
    node1, postal1, full1 = cluster[0], postal_cluster[0], full_sync_cluster[0]
    postal_env = {"BENCH_NODES": " ".join(f"{n.host}:{n.port}" for n in postal_cluster)}

    def postal_args(phase: str) -> list[str]:
        return [str(postal), f"put-{phase}-", str(POSTAL_THREADS)]

    def load(round_: int) -> Measurement:
        return run_loader(prefixed_copy(postal, scratch / f"load-r{round_}.tsv", f"load-r{round_}-"), postal1)

    def on_etcd(args: Callable[[str], list[str]], round_: int) -> Measurement:
        if isinstance(etcd_port, Unavailable):
            raise etcd_port
        return warmed(f"http://{HOST}:{etcd_port}", "etcd.lua", settings, round_, args)

    def etcd_put(round_: int) -> Measurement:
        measured = on_etcd(lambda phase: ["put", f"etcd-{phase}"], round_)
        try:
            stored = etcd.count(etcd_port, f"etcd-r{round_}-")
        except etcd.EtcdError as e:
            raise Unavailable(f"etcd: {e}") from None
        if stored < measured.requests - measured.errors:
            raise Unavailable(f"etcd holds {stored} keys of the {measured.requests - measured.errors} written: "
                              "etcd.lua encodes keys otherwise than Python")
        return measured

    return [
        Operation("baseline GET", lambda r: warmed(f"{base}/", "static.lua", settings, r)),
        Operation("baseline PUT", lambda r: warmed(f"{base}/put/", "put.lua", settings, r, lambda p: [p])),
        Operation("no access log GET", lambda r: warmed(f"{quiet}/", "static.lua", settings, r)),
        Operation("Klein dict PUT", lambda r: warmed(f"{klein}/db/", "put.lua", settings, r, lambda p: [f"k-{p}"])),
        Operation("Klein dict GET", lambda r: warmed(f"{klein}/db/", "get.lua", settings, r,
                                                    lambda p: [str(settings.preload)])),
        Operation("PUT", lambda r: warmed(node1.url("/db/"), "put.lua", settings, r, lambda p: [f"bench-{p}"])),
        Operation("GET", lambda r: warmed(node1.url("/db/"), "get.lua", settings, r,
                                          lambda p: [str(settings.preload)])),
        Operation("PUT (sync full)", lambda r: warmed(full1.url("/db/"), "put.lua", settings, r,
                                                      lambda p: [f"bench-{p}"])),
        Operation("etcd PUT", etcd_put),
        Operation("etcd GET", lambda r: on_etcd(lambda p: ["get", str(settings.preload)], r)),
        Operation("postal PUT (N=2)", lambda r: warmed(postal1.url("/"), "load.lua", settings, r, postal_args,
                                                      POSTAL_THREADS, postal_env)),
        Operation("postal load (N=2)", load),
    ]


def measure_rounds(ops: Sequence[Operation], rounds: int, progress: Callable[[str], None]) -> list[Row]:
    """Every operation once per round, rounds one after the other, each once the machine is quiet."""
    results: dict[str, list[Union[Measurement, Unavailable]]] = {op.name: [] for op in ops}
    for round_ in range(1, rounds + 1):
        for op in ops:
            if not wait_until_quiet():
                progress(f"measuring anyway: the machine was not quiet within {QUIET_SECONDS:.0f} s "
                         "(or has no /proc/stat)")
            progress(f"round {round_}/{rounds}: {op.name}")
            try:
                results[op.name].append(op.measure(round_))
            except Unavailable as e:
                results[op.name].append(e)
    return [aggregate(op.name, results[op.name]) for op in ops]


def run(settings: Settings, scratch: Path, progress: Callable[[str], None] = lambda message: None) -> dict:
    """Start the baseline server and the three clusters in ``scratch``, measure, stop
    everything; the report."""
    with ExitStack() as stack:
        postal = postal_data(settings.data, scratch)
        progress("starting the reference servers and three 3-node clusters")
        references = {kind: start_baseline(stack, scratch, kind, settings.preload) for kind in ("bare", "quiet", "klein")}
        cluster = start_cluster(stack, scratch / "cluster", replicas=3)
        postal_cluster = start_cluster(stack, scratch / "postal-cluster", replicas=2)
        full_sync_cluster = start_cluster(stack, scratch / "full-sync-cluster", replicas=3,
                                          options=lambda node: ("--sync", "full"))
        progress(f"preloading {settings.preload:,} keys")
        preload(cluster, settings.preload)
        progress(f"starting etcd, {etcd.MEMBERS} members, with the same keys")
        etcd_port = start_etcd_preloaded(stack, scratch, settings.preload)
        ops = operations(settings, scratch, references, cluster, postal_cluster, postal, etcd_port, full_sync_cluster)
        rows = measure_rounds(ops, settings.rounds, progress)
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
        "postal_data": str(postal) if postal == settings.data else f"generated, {POSTAL_ROWS} rows",
        "command": settings.command,
    }
