"""``python -m gossipdht.tools.localcluster run --nodes 3`` starts local nodes, joins them and
serves until Ctrl-C.  ``python -m gossipdht.tools.localcluster measure --nodes 10`` times the
membership targets with real processes (nodes joined one after another through
``POST /dht/join``, a ``kill -9``, and a restart) and prints one JSON object.
``python -m gossipdht.tools.localcluster outage --keys 20000 --down 10`` loads the keys, stops
one node with ``kill -9`` for that many seconds, restarts it on its disk and prints, as
one JSON object, how many records the cluster moved meanwhile (``/dht/stats`` counters).
``python -m gossipdht.tools.localcluster joinlag --keys 1000000`` loads the keys into 3 nodes,
joins a fourth and prints the largest reactor lag and Lifeguard health score each node
showed meanwhile.  Options after ``--`` go to every node, as in ``outage --
--anti-entropy-interval 10``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Sequence

from gossipdht.tools.localcluster import join, join_lag, measure, outage, start_nodes


def run(count: int, first_port: int, directory: str, args: Sequence[str] = ()) -> None:
    nodes = start_nodes(directory, count, args, first_port)
    try:
        for node in nodes[1:]:
            join(node, nodes[0])
        first = nodes[0].url("")
        print(f"{count} gossipdht nodes on {', '.join(n.url('') for n in nodes)}; data and logs in {directory}")
        print(f"Ctrl-C stops them. The dashboard: {first}/ui in a browser. Try:")
        last = nodes[-1].url("")
        print(f"  curl -XPUT -dvalue=myvalue {first}/db/mykey")
        print(f"  curl {last}/db/mykey                 # any node answers for any key")
        print(f"  curl {first}/dht/owners/mykey        # the nodes that store it")
        print(f"  curl '{first}/db?scope=replica'      # the keys stored on a node")
        print(f"  curl -XDELETE {last}/db/mykey")
        print(f"  curl {first}/dht/peers")
        print(f"  curl {first}/dht/stats")
        print(f"  curl {last}/dht/leave")
        while all(node.running for node in nodes):
            time.sleep(0.5)
        print("a node exited; see its node.log", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for node in nodes:
            node.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gossipdht.tools.localcluster", description=__doc__.split("\n\n")[0],
        usage="%(prog)s [options] {run,measure,outage,joinlag} [-- NODE_OPTION ...]",
        epilog="NODE_OPTIONs (after --) go to every node's twistd gossipdht.")
    parser.add_argument("command", choices=["run", "measure", "outage", "joinlag"])
    parser.add_argument("--nodes", type=int, default=None,
                        help="default: run 3, measure 10, outage 5, joinlag 3 (and the joiner)")
    parser.add_argument("--port", type=int, default=8080, help="first node's port (run); the others follow")
    parser.add_argument("--dir", default=None, help="where nodes keep data and logs")
    parser.add_argument("--keys", type=int, default=20_000, help="keys written first (outage, joinlag)")
    parser.add_argument("--down", type=float, default=10, help="seconds the node stays down (outage)")
    # Split by hand: argparse gives a "*" positional after another one nothing from behind "--".
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args, node_args = parser.parse_args(argv[:split]), argv[split + 1:]
    if args.command == "run":
        run(args.nodes or 3, args.port, args.dir or os.path.join("gossipdht-data", "local"), node_args)
        return
    with tempfile.TemporaryDirectory() as scratch:
        if args.command == "measure":
            print(json.dumps(measure(args.nodes or 10, args.dir or scratch, node_args)))
        elif args.command == "joinlag":
            print(json.dumps(join_lag(args.nodes or 3, args.keys, args.dir or scratch, node_args)))
        else:
            # What the nodes were told, for the report and the deadlines: their defaults otherwise.
            told = argparse.ArgumentParser(add_help=False)
            told.add_argument("--replicas", "-N", type=int, default=3)
            told.add_argument("--anti-entropy-interval", type=float, default=30)
            node, _ = told.parse_known_args(node_args)
            print(json.dumps(outage(args.nodes or 5, args.keys, args.down, args.dir or scratch, node_args,
                                    node.replicas, node.anti_entropy_interval)))


if __name__ == "__main__":
    main()
