"""The ``gossipdht`` command: ``gossipdht load FILE --node HOST:PORT``.

Nodes themselves run under ``twistd gossipdht``; this command holds the client tools and
their console output (the library modules print nothing).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Sequence, TextIO

from gossipdht.client import keyring, load
from gossipdht.core.address import AddressError, parse_address
from gossipdht.core.keyring import new_key

BAR_WIDTH = 30
ERRORS_SHOWN = 10


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


def load_command(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="gossipdht load", description=load.__doc__.split("\n\n")[0])
    parser.add_argument("file", help="a TSV file: one key<TAB>value per line, UTF-8")
    parser.add_argument("--node", action="append", required=True, metavar="HOST:PORT",
                        help="a node to send through; give it again to spread the load")
    parser.add_argument("--batch", type=int, default=load.BATCH_LINES, help="lines per request (%(default)s)")
    parser.add_argument("--connections", type=int, default=load.CONNECTIONS,
                        help="requests in flight at once (%(default)s)")
    parser.add_argument("--token", default=os.environ.get("GOSSIPDHT_TOKEN"),
                        help="API token of the write role, sent as Authorization: Bearer TOKEN "
                             "[default: $GOSSIPDHT_TOKEN]")
    args = parser.parse_args(argv)
    try:
        nodes = [parse_address(node, "node") for node in args.node]
    except AddressError as e:
        parser.error(str(e))
    started = time.monotonic()
    try:
        lines = load.read_lines(args.file)
        progress = Progress(len(lines), sys.stderr)
        sender = load.load(lines, [(a.host, a.port) for a in nodes], max(args.batch, 1),
                           max(args.connections, 1), progress.add, args.token)
        progress.end()
    except (OSError, load.LoadError) as e:
        print(f"gossipdht load: {e}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    for key, why in list(sender.errors.items())[:ERRORS_SHOWN]:
        print(f"not stored: {key}: {why}", file=sys.stderr)
    failed = f", {len(sender.errors)} not stored" if sender.errors else ""
    print(f"{sender.stored} keys in {seconds:.2f} s: {sender.stored / seconds:,.0f} keys/s{failed}")
    return 1 if sender.errors else 0


def keygen_command(argv: Sequence[str]) -> int:
    argparse.ArgumentParser(prog="gossipdht keygen", description="Print a new 32-byte gossip key, in base64.").parse_args(argv)
    print(new_key())
    return 0


def keyring_command(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gossipdht keyring", description="Rotate the gossip keyring of every live member, as serf keys does; "
        "exit status 1 unless every member answered and did it.")
    parser.add_argument("action", choices=keyring.ACTIONS)
    parser.add_argument("key", nargs="?", help="the base64 key (not for list)")
    parser.add_argument("--node", required=True, metavar="HOST:PORT", help="any node of the cluster")
    parser.add_argument("--cacert", metavar="FILE", help="speak HTTPS, trusting this CA")
    parser.add_argument("--token", default=os.environ.get("GOSSIPDHT_TOKEN"),
                        help="API token of the admin role (default: $GOSSIPDHT_TOKEN)")
    args = parser.parse_args(argv)
    if (args.key is None) != (args.action == "list"):
        parser.error("install, use and remove take a KEY; list takes none")
    try:
        node = parse_address(args.node, "node")
    except AddressError as e:
        parser.error(str(e))
    try:
        status, answer = keyring.ask(node.host, node.port, args.action, args.key, args.cacert, args.token)
    except keyring.AskError as e:
        print(f"gossipdht keyring: {e}", file=sys.stderr)
        return 1
    for line in keyring.report(answer):
        print(line)
    return 0 if status == 200 else 1


COMMANDS = {"load": load_command, "keygen": keygen_command, "keyring": keyring_command}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(f"usage: gossipdht {{{','.join(COMMANDS)}}} ...  (nodes run with: twistd gossipdht --help)",
              file=sys.stderr)
        return 2
    return COMMANDS[args[0]](args[1:])

