"""Loading a TSV file of ``key<TAB>value`` lines into a cluster through the bulk
endpoint (``POST /db``); the command line, ``gossipdht load``, is in ``cli``.

The file is checked whole first, so a bad line stops the load before anything is sent.
Batches of lines go out a few at once, each through the ring-aware client, which splits
it into one bulk write per first owner (``Client.put_many``).
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence

from gossipdht.client.blocking import Client
from gossipdht.client.http import Node, NodeError, RequestError
from gossipdht.core.address import Address
from gossipdht.core.bulk import BadBulk, parse_tsv

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
    """Sends batches through one client, from as many threads as there are requests at once."""

    def __init__(self, nodes: Sequence[Node], progress: Callable[[int], None]) -> None:
        first = nodes[0]
        self.client = Client([Address(node.host, node.port) for node in nodes], first.cacert, first.token, TIMEOUT)
        self.progress = progress
        self.lock = threading.Lock()
        self.errors: dict[str, str] = {}
        self.stored = 0

    def send(self, first_line: int, body: bytes) -> None:
        items = parse_tsv(body, sys.maxsize)  # checked whole before: cannot fail here
        try:
            errors = self.client.put_many(items)
        except NodeError as e:
            raise LoadError(f"lines from {first_line}: {e.status} {e.message}") from None
        except RequestError as e:
            raise LoadError(str(e)) from None
        with self.lock:
            self.stored += len(items) - len(errors)
            self.errors.update(errors)
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
