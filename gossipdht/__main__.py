"""The ``gossipdht`` command: ``gossipdht load FILE --node HOST:PORT``.

Nodes themselves run under ``twistd gossipdht``; this command holds the client tools.
"""

from __future__ import annotations

import sys
from typing import Sequence

from gossipdht import load

COMMANDS = {"load": load.main}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(f"usage: gossipdht {{{','.join(COMMANDS)}}} ...  (nodes run with: twistd gossipdht --help)",
              file=sys.stderr)
        return 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
