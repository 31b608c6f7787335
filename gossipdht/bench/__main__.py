"""``python -m gossipdht.bench``: start a bare twisted.web server and two local 3-node
gossipdht clusters, drive them with ``wrk``, and print one table (or ``--json``)."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Optional, Sequence

from gossipdht.bench import DEFAULT_DATA, Settings, format_table, run, wrk_path

DESCRIPTION = ("Start a bare twisted.web server and two local 3-node gossipdht clusters, "
               "drive them with wrk and print one table.")
FULL = {"rounds": 3, "seconds": 10, "warmup": 2, "preload": 100_000}
QUICK = {"rounds": 1, "seconds": 3, "warmup": 1, "preload": 10_000}


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def parse_settings(argv: Sequence[str]) -> tuple[Settings, bool]:
    """The settings and whether to print JSON; ``--quick`` changes the defaults only."""
    parser = argparse.ArgumentParser(prog="python -m gossipdht.bench", description=DESCRIPTION)
    parser.add_argument("--quick", action="store_true",
                        help="1 round of 3 s per operation, 1 s warm-up, 10,000 preloaded keys")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
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
        command=shlex.join(["python", "-m", "gossipdht.bench", *argv]),
    )
    return settings, args.json


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    settings, as_json = parse_settings(sys.argv[1:] if argv is None else argv)
    if wrk_path() is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C does, so that every node and server started is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        report = run(settings, progress)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print(json.dumps(report) if as_json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
