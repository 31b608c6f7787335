"""What runs outside a node: the Python client, the ``gossipdht`` command and the bulk
loader, which speak only HTTP to a cluster.

``Client`` (blocking, ``blocking``) and ``TwistedClient`` (Deferreds, ``twistedclient``)
send each request straight to an owner of its key (``routing``).  ``TwistedClient`` is
imported on first use, so that the blocking client and the command never load Twisted.

May import ``core``; nothing of the node's runtime.
"""

from gossipdht.client.blocking import Client
from gossipdht.client.http import NodeError, RequestError, Unreachable
from gossipdht.client.operations import Value
from gossipdht.client.routing import Member

__all__ = ["Client", "TwistedClient", "RequestError", "NodeError", "Unreachable", "Value", "Member"]


def __getattr__(name: str):
    if name == "TwistedClient":
        from gossipdht.client.twistedclient import TwistedClient
        return TwistedClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
