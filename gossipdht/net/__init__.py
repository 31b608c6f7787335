"""Between nodes: the gossip UDP protocol and the cluster adapter around the membership
core, the internal RPC over an upgraded HTTP connection, the treq client of peers'
APIs, the remote replica, and the settlement watch.

May import ``core``, ``membership``, ``storage`` and ``data``; not the public HTTP API
(``web``) nor the node assembly (``node``).
"""
