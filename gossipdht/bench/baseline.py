"""A bare twisted.web server, the yardstick of the benchmark: ``python -m gossipdht.bench.baseline PORT``.

One leaf resource answers every ``GET`` with a constant and every ``PUT`` with ``204``,
with no access log and no tracebacks, so its rate is what Twisted's HTTP stack alone
costs on this machine.
"""

from __future__ import annotations

import sys

from twisted.web.resource import Resource
from twisted.web.server import Request, Site

VALUE = b"value"


class Constant(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return VALUE

    def render_PUT(self, request: Request) -> bytes:
        request.content.read()
        request.setResponseCode(204)
        return b""


class QuietSite(Site):
    """A Site without the access log: gossipdht nodes log no requests either."""

    displayTracebacks = False

    def log(self, request: Request) -> None:
        pass


def main(argv: list[str]) -> None:
    from twisted.internet import endpoints, reactor

    port = int(argv[1])
    endpoint = endpoints.serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1")
    endpoint.listen(QuietSite(Constant()))
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
