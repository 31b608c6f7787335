"""The public HTTP API on Klein and twisted.web: ``/db`` and ``/dht`` routes, the key
resource, ``/metrics``, the site that bounds request bodies, the limits of the HTTP port
(connections, deadlines, bytes in flight, load), and the shared one-line error replies.

May import every layer below (``net``, ``data``, ``membership``, ``storage``, ``core``);
not ``node``.
"""
