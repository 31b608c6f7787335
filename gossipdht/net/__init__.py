"""Between nodes: the gossip UDP protocol and the cluster adapter around the membership
core, the internal RPC over an upgraded HTTP connection (sealed with the gossip
keyring, over TLS when the cluster speaks it) and what rides on it (membership calls,
the remote replica, keyring rotation), and the settlement watch.

May import ``core``, ``membership``, ``storage`` and ``data``; not the public HTTP API
(``web``) nor the node assembly (``node``).
"""
