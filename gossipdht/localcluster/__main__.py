"""``python -m gossipdht.localcluster run --nodes 3`` starts local nodes, joins them and
serves until Ctrl-C.  ``python -m gossipdht.localcluster measure --nodes 10`` times the
membership targets with real processes (nodes joined one after another through
``POST /dht/join``, a ``kill -9``, and a restart) and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Sequence

from gossipdht.localcluster import join, measure, start_nodes


def run(count: int, first_port: int, directory: str) -> None:
    nodes = start_nodes(directory, count, [], first_port)
    try:
        for node in nodes[1:]:
            join(node, nodes[0])
        first = nodes[0].url("")
        print(f"{count} gossipdht nodes on {', '.join(n.url('') for n in nodes)}; data and logs in {directory}")
        print("Ctrl-C stops them. Try:")
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
    parser = argparse.ArgumentParser(prog="python -m gossipdht.localcluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "measure"])
    parser.add_argument("--nodes", type=int, default=None, help="default: run 3, measure 10")
    parser.add_argument("--port", type=int, default=8080, help="first node's port (run); the others follow")
    parser.add_argument("--dir", default=None, help="where nodes keep data and logs")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.nodes or 3, args.port, args.dir or os.path.join("gossipdht-data", "local"))
    else:
        with tempfile.TemporaryDirectory() as scratch:
            print(json.dumps(measure(args.nodes or 10, args.dir or scratch)))


if __name__ == "__main__":
    main()
