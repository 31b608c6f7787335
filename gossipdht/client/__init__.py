"""What runs outside a node: the ``gossipdht`` command and the bulk loader, which speak
only HTTP to a cluster.

May import ``core``; nothing of the node's runtime.
"""
