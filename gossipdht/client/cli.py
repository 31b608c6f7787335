"""The ``gossipdht`` command: ``gossipdht SUBCOMMAND [--node HOST:PORT] ...``.

Nodes themselves run under ``twistd gossipdht``; this command holds the client tools and
their console output (the library modules print nothing).  Exit status: 0 done, 1 a
failure it reports, 2 a usage error; an error is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Callable, Optional, Sequence, TextIO

from gossipdht.client import commands, keyring, load
from gossipdht.client.http import Node, RequestError
from gossipdht.core.address import AddressError, parse_address
from gossipdht.core.keyring import new_key

BAR_WIDTH = 30
ERRORS_SHOWN = 10
DEFAULT_NODE = "127.0.0.1:8080"
TEXT_VALUE = "text/plain; charset=utf-8"
BINARY_VALUE = "application/octet-stream"


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line on stderr and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


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


class Waiting:
    """While a request that waits for data to move runs: its seconds so far, on a terminal only."""

    def __init__(self, what: str, out: TextIO) -> None:
        self.what, self.out = what, out
        self.done = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> Waiting:
        if self.out.isatty():
            self.ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        if self.ticker.is_alive():
            self.ticker.join()
            self.out.write("\r\033[K")  # the line is cleared for what the command prints next
            self.out.flush()

    def _tick(self) -> None:
        started = time.monotonic()
        while True:
            self.out.write(f"\r{self.what}: {time.monotonic() - started:.0f} s")
            self.out.flush()
            if self.done.wait(1.0):
                return


# -- options every subcommand shares -----------------------------------------------------

def add_common(parser: argparse.ArgumentParser, repeatable_node: bool = False, node_help: str = "the node to ask") -> None:
    default = os.environ.get("GOSSIPDHT_NODE") or DEFAULT_NODE
    if repeatable_node:
        parser.add_argument("--node", action="append", metavar="HOST:PORT",
                            help=f"{node_help}; give it again for more [default: $GOSSIPDHT_NODE, else {DEFAULT_NODE}]")
    else:
        parser.add_argument("--node", default=default, metavar="HOST:PORT",
                            help=f"{node_help} [default: $GOSSIPDHT_NODE, else {DEFAULT_NODE}]")
    parser.set_defaults(default_node=default)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text for people, json for scripts")
    parser.add_argument("--token", default=os.environ.get("GOSSIPDHT_TOKEN"),
                        help="API token, sent as Authorization: Bearer TOKEN [default: $GOSSIPDHT_TOKEN]")
    parser.add_argument("--cacert", metavar="FILE", help="speak HTTPS, trusting the CA certificate in FILE")


def node_of(args: argparse.Namespace, text: str) -> Node:
    try:
        address = parse_address(text, "node")
    except AddressError as e:
        args.parser.error(str(e))
    return Node(address.host, address.port, args.cacert, args.token)


def show(result: commands.Result, args: argparse.Namespace) -> None:
    if args.format == "json":
        print(json.dumps(result.data, indent=2))
    elif isinstance(result.text, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(result.text)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(result.text)


def asking(run: Callable[[argparse.Namespace, Node], commands.Result]) -> Callable[[argparse.Namespace], int]:
    """A subcommand that asks ``--node`` and prints the result: status 1 with one line when it cannot."""
    def command(args: argparse.Namespace) -> int:
        node = node_of(args, args.node)
        try:
            result = run(args, node)
        except RequestError as e:
            print(f"{args.parser.prog}: {e}", file=sys.stderr)
            return 1
        show(result, args)
        return 0
    return command


# -- the subcommands ------------------------------------------------------------------------

def put_value(args: argparse.Namespace, node: Node) -> commands.Result:
    if args.value == "-":
        value, content_type = sys.stdin.buffer.read(), BINARY_VALUE
    else:
        value, content_type = args.value.encode("utf-8"), TEXT_VALUE
    return commands.put(node, args.key, value, args.content_type or content_type)


def join_cluster(args: argparse.Namespace, node: Node) -> commands.Result:
    try:
        seed = parse_address(args.seed, "join")
    except AddressError:
        args.parser.error(f"{args.seed!r} is not HOST:PORT")
    with Waiting(f"{node} joins the cluster of {seed}", sys.stderr):
        return commands.join(node, seed)


def leave_cluster(args: argparse.Namespace, node: Node) -> commands.Result:
    with Waiting(f"{node} hands its data off and leaves", sys.stderr):
        return commands.leave(node)


def load_command(args: argparse.Namespace) -> int:
    nodes = [node_of(args, text) for text in args.node or [args.default_node]]
    started = time.monotonic()
    try:
        lines = load.read_lines(args.file)
        progress = Progress(len(lines), sys.stderr)
        sender = load.load(lines, nodes, max(args.batch, 1), max(args.connections, 1), progress.add)
        progress.end()
    except (OSError, load.LoadError, RequestError) as e:
        print(f"gossipdht load: {e}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    if args.format == "json":
        print(json.dumps({"stored": sender.stored, "seconds": round(seconds, 3), "errors": sender.errors}, indent=2))
    else:
        for key, why in list(sender.errors.items())[:ERRORS_SHOWN]:
            print(f"not stored: {key}: {why}", file=sys.stderr)
        failed = f", {len(sender.errors)} not stored" if sender.errors else ""
        print(f"{sender.stored} keys in {seconds:.2f} s: {sender.stored / seconds:,.0f} keys/s{failed}")
    return 1 if sender.errors else 0


def keygen_command(args: argparse.Namespace) -> int:
    print(new_key())
    return 0


def keyring_command(args: argparse.Namespace) -> int:
    if (args.key is None) != (args.action == "list"):
        args.parser.error("install, use and remove take a KEY; list takes none")
    node = node_of(args, args.node)
    try:
        status, answer = keyring.ask(node, args.action, args.key)
    except RequestError as e:
        print(f"gossipdht keyring: {e}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(answer, indent=2))
    else:
        for line in keyring.report(answer):
            print(line)
    return 0 if status == 200 else 1


def build_parser() -> Parser:
    parser = Parser(prog="gossipdht", description="Operate a gossipdht cluster over its HTTP API "
                    "(nodes run with: twistd gossipdht --help).")
    subcommands = parser.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)

    def add(name: str, run: Callable[[argparse.Namespace], int], description: str, **common) -> Parser:
        sub = subcommands.add_parser(name, help=description, description=description)
        if common.pop("common", True):
            add_common(sub, **common)
        sub.set_defaults(run=run, parser=sub)
        return sub

    sub = add("members", asking(lambda a, n: commands.members(n, a.detailed)),
              "The members the node knows, as serf members shows them.")
    sub.add_argument("--detailed", action="store_true", help="add each member's incarnation and how long it has had its status")
    add("status", asking(lambda a, n: commands.status(n)),
        "Each member's status, keys, tombstones, share of the ring and data still to move; a count by status.")
    add("ring", asking(lambda a, n: commands.ring(n)), "The ring's checksum, vnodes and each member's share.")
    add("owners", asking(lambda a, n: commands.owners(n, a.key)), "The members that hold KEY, in order.").add_argument("key")
    add("transfers", asking(lambda a, n: commands.transfers(n, a.format == "json")), "What every member still moves.")
    add("get", asking(lambda a, n: commands.get(n, a.key)),
        "The value of KEY on stdout, byte for byte (status 1: no such key).").add_argument("key")
    sub = add("put", asking(put_value), "Store VALUE under KEY; - reads the value from stdin, byte for byte.")
    sub.add_argument("key")
    sub.add_argument("value", metavar="VALUE|-")
    sub.add_argument("--content-type", help=f"[default: {TEXT_VALUE} for VALUE, {BINARY_VALUE} for stdin]")
    add("delete", asking(lambda a, n: commands.delete(n, a.key)), "Delete KEY (done also when it did not exist).").add_argument("key")
    add("keys", asking(lambda a, n: commands.keys(n, a.scope)), "The keys the node lists, one a line "
        "(those it is the primary for: every node's together name each key once).").add_argument(
        "--scope", choices=("primary", "replica"), default="primary", help="replica: every key stored on the node")
    add("join", asking(join_cluster), "Have the node join the cluster of HOST:PORT; answers once the data "
        "has moved.").add_argument("seed", metavar="HOST:PORT")
    add("leave", asking(leave_cluster), "Have the node hand its data off and leave its cluster.")

    sub = add("load", load_command, "Load a TSV file of key<TAB>value lines through POST /db, checked whole first.",
              repeatable_node=True,
              node_help="a node of the cluster, asked for its members (batches go to the keys' owners)")
    sub.add_argument("file", help="a TSV file: one key<TAB>value per line, UTF-8")
    sub.add_argument("--batch", type=int, default=load.BATCH_LINES, help="lines per request (%(default)s)")
    sub.add_argument("--connections", type=int, default=load.CONNECTIONS, help="requests in flight at once (%(default)s)")
    add("keygen", keygen_command, "Print a new 32-byte gossip key, in base64.", common=False)
    sub = add("keyring", keyring_command, "Rotate the gossip keyring of every live member, as serf keys does; "
              "exit status 1 unless every member answered and did it.", node_help="any node of the cluster")
    sub.add_argument("action", choices=keyring.ACTIONS)
    sub.add_argument("key", nargs="?", help="the base64 key (not for list)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
        return args.run(args)
    except SystemExit as e:  # a usage error (2) or --help (0), already printed
        return e.code if isinstance(e.code, int) else 2
    except KeyboardInterrupt:  # Ctrl-C while waiting for a node: no traceback
        return 130

