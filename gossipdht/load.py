"""``gossipdht load FILE --node HOST:PORT``: put a TSV file of ``key<TAB>value`` lines
into a cluster through the bulk endpoint (``POST /db``).

The file is checked whole first, so a bad line stops the load before anything is sent.
Batches of lines go out over a few keep-alive connections at once, spread over the
nodes given.  Blocking ``http.client`` in threads: the loader is a plain client.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence, TextIO

from gossipdht.bulk import TSV, BadBulk, parse_tsv
from gossipdht.config import ConfigError, parse_address

BATCH_LINES = 1000
CONNECTIONS = 4
TIMEOUT = 60.0
BAR_WIDTH = 30


class LoadError(Exception):
    """The load cannot go on; the message says why in one line."""


def batches(lines: list[bytes], size: int) -> Iterator[tuple[int, bytes]]:
    """(number of the batch's first line, body) for each run of ``size`` lines."""
    for start in range(0, len(lines), size):
        yield start + 1, b"".join(lines[start : start + size])


def check(lines: list[bytes]) -> None:
    """Refuse the file at its first bad line (value sizes are left to the nodes)."""
    for start, body in batches(lines, BATCH_LINES):
        try:
            parse_tsv(body, sys.maxsize)
        except BadBulk as e:
            number, _, why = str(e).partition(": ")
            raise LoadError(f"line {start - 1 + int(number.split()[1])}: {why}; nothing was loaded") from None


class Progress:
    """A bar on a terminal, nothing elsewhere."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.done, self.out = total, 0, out
        self.shown = out.isatty()
        self.lock = threading.Lock()

    def add(self, count: int) -> None:
        with self.lock:
            self.done += count
            if self.shown:
                filled = BAR_WIDTH * self.done // max(self.total, 1)
                self.out.write(f"\r[{'#' * filled}{' ' * (BAR_WIDTH - filled)}] {self.done:,}/{self.total:,} keys")
                self.out.flush()

    def end(self) -> None:
        if self.shown:
            self.out.write("\n")


class Sender:
    """Posts batches, one keep-alive connection per thread, threads spread over the nodes."""

    def __init__(self, nodes: Sequence[tuple[str, int]], progress: Progress) -> None:
        self.nodes = nodes
        self.progress = progress
        self.local = threading.local()
        self.next_node = 0
        self.lock = threading.Lock()
        self.errors: dict[str, str] = {}
        self.stored = 0

    def connection(self) -> http.client.HTTPConnection:
        if not hasattr(self.local, "connection"):
            with self.lock:
                host, port = self.nodes[self.next_node % len(self.nodes)]
                self.next_node += 1
            self.local.connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
        return self.local.connection

    def send(self, first_line: int, body: bytes) -> None:
        connection = self.connection()
        try:
            connection.request("POST", "/db", body, {"Content-Type": f"{TSV}; charset=utf-8"})
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as e:
            connection.close()
            raise LoadError(f"{connection.host}:{connection.port}: {e}") from None
        if response.status not in (200, 503):
            raise LoadError(f"lines from {first_line}: {response.status} {answer.decode(errors='replace').strip()}")
        result = json.loads(answer)
        with self.lock:
            self.stored += result["stored"]
            self.errors.update(result["errors"])
        self.progress.add(body.count(b"\n"))


def load(path: str, nodes: Sequence[tuple[str, int]], batch_lines: int, connections: int,
         out: TextIO) -> tuple[Sender, int]:
    """Send the whole file; the sender holds what was stored and what failed."""
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    check(lines)
    progress = Progress(len(lines), out)
    sender = Sender(nodes, progress)
    with ThreadPoolExecutor(connections) as pool:
        for future in [pool.submit(sender.send, *batch) for batch in batches(lines, batch_lines)]:
            future.result()
    progress.end()
    return sender, len(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gossipdht load", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="a TSV file: one key<TAB>value per line, UTF-8")
    parser.add_argument("--node", action="append", required=True, metavar="HOST:PORT",
                        help="a node to send through; give it again to spread the load")
    parser.add_argument("--batch", type=int, default=BATCH_LINES, help="lines per request (%(default)s)")
    parser.add_argument("--connections", type=int, default=CONNECTIONS,
                        help="requests in flight at once (%(default)s)")
    args = parser.parse_args(argv)
    try:
        nodes = [parse_address(node, "node") for node in args.node]
    except ConfigError as e:
        parser.error(str(e))
    started = time.monotonic()
    try:
        sender, total = load(args.file, [(a.host, a.port) for a in nodes], max(args.batch, 1),
                             max(args.connections, 1), sys.stderr)
    except (OSError, LoadError) as e:
        print(f"gossipdht load: {e}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    for key, why in list(sender.errors.items())[:10]:
        print(f"not stored: {key}: {why}", file=sys.stderr)
    failed = f", {len(sender.errors)} not stored" if sender.errors else ""
    print(f"{sender.stored} keys in {seconds:.2f} s: {sender.stored / seconds:,.0f} keys/s{failed}")
    return 1 if sender.errors else 0
