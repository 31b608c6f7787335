"""The reference servers of the benchmark: ``python -m gossipdht.tools.bench.baseline PORT [KIND] [KEYS]``.

- ``bare`` (the default), the yardstick A: twisted.web as a bare script runs it,
  ``Site(resource)`` with Twisted's defaults (the access log included), one leaf resource
  answering every ``GET`` with a constant and every ``PUT`` with ``204``;
- ``quiet``: the same without the access log, as gossipdht nodes run;
- ``klein``: a Klein app keeping values in a dict (the issue's second reference), on a
  bare ``Site`` too, holding the ``KEYS`` keys the benchmark preloads.

The issue's table puts the Klein app at 0.60 A and etcd at 0.42 A (``PUT``) and 0.63 A
(``GET``); those rows check which reading of "a bare twisted.web server" it meant.
"""

from __future__ import annotations

import sys

from klein import Klein
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

VALUE = b"value"


class Constant(Resource):
    """A resource that answers every GET with the same small body."""

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


def klein_dict(values: dict[str, bytes]) -> Resource:
    """``GET`` and ``PUT /db/<key>`` on ``values``."""
    app = Klein()

    @app.route("/db/<key>", methods=["GET"])
    def get(request: Request, key: str) -> bytes:
        if key not in values:
            request.setResponseCode(404)
            return b""
        return values[key]

    @app.route("/db/<key>", methods=["PUT"])
    def put(request: Request, key: str) -> bytes:
        values[key] = request.content.read()
        request.setResponseCode(204)
        return b""

    return app.resource()


def site(kind: str, keys: int) -> Site:
    if kind == "quiet":
        return QuietSite(Constant())
    if kind == "klein":
        from gossipdht.tools.bench import preloaded

        return Site(klein_dict({key: value.encode() for key, value in map(preloaded, range(keys))}))
    if kind == "bare":
        return Site(Constant())
    raise SystemExit(f"unknown kind {kind!r}: bare, quiet or klein")


def main(argv: list[str]) -> None:
    from twisted.internet import endpoints, reactor

    port, kind, keys = int(argv[1]), argv[2] if len(argv) > 2 else "bare", int(argv[3]) if len(argv) > 3 else 0
    endpoint = endpoints.serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1")
    endpoint.listen(site(kind, keys))
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
