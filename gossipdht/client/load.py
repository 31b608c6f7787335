"""Loading a TSV file of ``key<TAB>value`` lines into a cluster through the bulk
endpoint (``POST /db``); the command line, ``gossipdht load``, is in ``cli``.

The file is checked whole first, so a bad line stops the load before anything is sent.
Batches of lines go out over a few keep-alive connections at once, spread over the
nodes given.  Blocking ``http.client`` in threads: the loader is a plain client.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Iterator, Sequence

from gossipdht.client.http import Node, one_line
from gossipdht.core.bulk import BadBulk, parse_tsv
from gossipdht.core.media import TSV

BATCH_LINES = 1000
CONNECTIONS = 4
TIMEOUT = 60.0


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


class Sender:
    """Posts batches, one keep-alive connection per thread, threads spread over the nodes."""

    def __init__(self, nodes: Sequence[Node], progress: Callable[[int], None]) -> None:
        self.nodes = [replace(node, timeout=TIMEOUT) for node in nodes]
        self.progress = progress
        self.local = threading.local()
        self.next_node = 0
        self.lock = threading.Lock()
        self.errors: dict[str, str] = {}
        self.stored = 0

    def connection(self) -> http.client.HTTPConnection:
        if not hasattr(self.local, "connection"):
            with self.lock:
                node = self.nodes[self.next_node % len(self.nodes)]
                self.next_node += 1
            self.local.node, self.local.connection = node, node.connect()
        return self.local.connection

    def send(self, first_line: int, body: bytes) -> None:
        connection = self.connection()
        try:
            connection.request("POST", "/db", body, self.local.node.headers(content_type=f"{TSV}; charset=utf-8"))
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as e:
            connection.close()
            raise LoadError(f"{self.local.node}: {e}") from None
        if response.status not in (200, 503):
            raise LoadError(f"lines from {first_line}: {response.status} {one_line(answer)}")
        result = json.loads(answer)
        with self.lock:
            self.stored += result["stored"]
            self.errors.update(result["errors"])
        self.progress(body.count(b"\n"))


def read_lines(path: str) -> list[bytes]:
    """The file's lines, each ending in a newline, checked whole (LoadError at a bad one)."""
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    check(lines)
    return lines


def load(lines: list[bytes], nodes: Sequence[Node], batch_lines: int, connections: int,
         progress: Callable[[int], None]) -> Sender:
    """Send the lines; the sender holds what was stored and what failed.  ``progress``
    hears how many lines each finished batch held."""
    sender = Sender(nodes, progress)
    with ThreadPoolExecutor(connections) as pool:
        for future in [pool.submit(sender.send, *batch) for batch in batches(lines, batch_lines)]:
            future.result()
    return sender
