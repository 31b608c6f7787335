"""``python -m gossipdht.tools.bench``: start a bare twisted.web server and three local 3-node
gossipdht clusters (one with ``--sync full``), drive them with ``wrk``, and print one table
(or ``--json``).
``--scale`` measures instead how single-key rates hold from 100,000 to 1,000,000 stored
keys and what adding a fourth node moves; ``--idle`` what an idle 10-node cluster costs;
``--security`` and ``--metrics`` what those cost; ``--client`` what the ring-aware Python client's
skipped hop buys; ``--overload`` what flooding one node's API does to the others and to gossip;
``--check ROW`` whether that row measures the same alone as in the full run."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from gossipdht.tools.bench import Settings, etcd, format_table, row_names, run, wrk_path
from gossipdht.tools.bench.check import format_check, run_check
from gossipdht.tools.bench.client import format_client, run_client
from gossipdht.tools.bench.metrics import format_metrics, run_metrics
from gossipdht.tools.bench.overload import FLOOD_CONNECTIONS, format_overload, run_overload
from gossipdht.tools.bench.postal import DEFAULT_DATA
from gossipdht.tools.bench.scale import format_idle, format_scale, idle, scale
from gossipdht.tools.bench.security import format_security, run_security

DESCRIPTION = ("Start a bare twisted.web server and three local 3-node gossipdht clusters, "
               "drive them with wrk and print one table.")
FULL = {"rounds": 3, "seconds": 10, "warmup": 2, "preload": 100_000, "large": 1_000_000, "idle": 30}
QUICK = {"rounds": 1, "seconds": 3, "warmup": 1, "preload": 10_000, "large": 100_000, "idle": 10}
IDLE_NODES = 10


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def parse_settings(argv: Sequence[str]) -> tuple[Settings, argparse.Namespace]:
    """The settings and the options; ``--quick`` changes the defaults only."""
    parser = argparse.ArgumentParser(prog="python -m gossipdht.tools.bench", description=DESCRIPTION)
    parser.add_argument("--quick", action="store_true",
                        help="1 round of 3 s per operation, 1 s warm-up, 10,000 preloaded keys")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--scale", action="store_true",
                      help="single-key rates with 100,000 then 1,000,000 keys stored, then a fourth node joins "
                           "(--quick: 10,000 and 100,000)")
    mode.add_argument("--security", action="store_true",
                      help="PUT and GET through a 3-node cluster in plaintext, with a gossip keyring, and with "
                           "mutual TLS and the keyring, and the gossip bytes each node sends")
    mode.add_argument("--metrics", action="store_true",
                      help="PUT and GET through a 3-node cluster with --metrics false and with metrics on, "
                           "and how long a scrape of /metrics takes")
    mode.add_argument("--client", action="store_true",
                      help="PUT and GET through the ring-aware Python client and through the same client sending "
                           "to one fixed node, on a 3-node cluster with N=2 and a 5-node one with N=3")
    mode.add_argument("--overload", action="store_true",
                      help=f"PUT and GET through the second node of a 3-node cluster with the first idle, at its "
                           f"capacity, and flooded by wrk with {FLOOD_CONNECTIONS} connections; the first node's 503s "
                           "and latency, what gossip saw, and what a 503 costs")
    mode.add_argument("--idle", action="store_true",
                      help=f"the CPU each node of an idle {IDLE_NODES}-node cluster uses over 30 s (--quick: 10 s)")
    mode.add_argument("--check", metavar="ROW",
                      help="measure ROW (a row of the table, such as 'etcd GET') with only its system started, "
                           "then the full run, and say whether the two agree within the spread of the rounds")
    parser.add_argument("--etcd-member", choices=etcd.CHOICES, default="leader",
                        help="the etcd member the etcd rows drive (default: %(default)s, etcd's best case)")
    parser.add_argument("--rounds", type=positive, help=f"rounds (default {FULL['rounds']})")
    parser.add_argument("--seconds", type=positive, help=f"seconds per measurement (default {FULL['seconds']})")
    parser.add_argument("--dir", type=Path, help="scratch directory for nodes, data and logs (default: a temporary one)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="postal TSV file (default: %(default)s; generated when absent)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    settings = Settings(
        rounds=args.rounds or defaults["rounds"],
        seconds=args.seconds or defaults["seconds"],
        warmup=defaults["warmup"],
        preload=defaults["preload"],
        data=args.data,
        directory=args.dir,
        command=shlex.join(["python", "-m", "gossipdht.tools.bench", *argv]),
        etcd_member=args.etcd_member,
    )
    if args.check is not None and args.check not in row_names(settings):
        parser.error(f"--check: no row is named {args.check!r}; the rows: {', '.join(row_names(settings))}")
    args.large = defaults["large"]
    args.idle_seconds = defaults["idle"]
    return settings, args


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    settings, args = parse_settings(sys.argv[1:] if argv is None else argv)
    if not (args.idle or args.client) and wrk_path() is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C does, so that every node and server started is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with tempfile.TemporaryDirectory(prefix="gossipdht-bench-") as scratch:
            directory = settings.directory or Path(scratch)
            directory.mkdir(parents=True, exist_ok=True)
            if args.scale:
                report = scale(settings, settings.preload, args.large, directory, progress)
                text = f"{format_scale(report)}\nreproduce: {settings.command}"
            elif args.security:
                report = run_security(settings, directory, progress)
                text = f"{format_security(report)}\nreproduce: {settings.command}"
            elif args.metrics:
                report = run_metrics(settings, directory, progress)
                text = f"{format_metrics(report)}\nreproduce: {settings.command}"
            elif args.overload:
                report = run_overload(settings, directory, progress)
                text = f"{format_overload(report)}\nreproduce: {settings.command}"
            elif args.check is not None:
                report = run_check(settings, directory, args.check, progress)
                text = format_check(report)  # the full run's table ends in the command
            elif args.client:
                report = run_client(settings, directory, progress)
                text = f"{format_client(report)}\nreproduce: {settings.command}"
            elif args.idle:
                report = idle(IDLE_NODES, args.idle_seconds, directory, progress)
                text = f"{format_idle(report)}\nreproduce: {settings.command}"
            else:
                report = run(settings, directory, progress)
                text = format_table(report)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print(json.dumps(report) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
