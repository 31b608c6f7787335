"""``python -m gossipdht``: the ``gossipdht`` command (see ``gossipdht.client.cli``)."""

import sys

from gossipdht.client.cli import main

sys.exit(main())
