"""The public REST API, served by Klein (single-key requests: ``keyresource``).

Handlers are thin: they parse and check the request, ask the coordinator, and turn
the answer into HTTP.  Every client mistake gets a 4xx with a one-line text body.
"""

from __future__ import annotations

import json
from typing import Callable, Iterable, Iterator, Optional

from klein import Klein
from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.task import TaskDone, TaskStopped, cooperate
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from gossipdht.core import bulk, media
from gossipdht.core.address import Address, AddressError, parse_seeds
from gossipdht.core.errors import PeerError
from gossipdht.core.hashing import RING_SIZE, token
from gossipdht.data.coordinator import Coordinator
from gossipdht.data.replica import LocalReplica
from gossipdht.membership.member import Member
from gossipdht.net import rpc
from gossipdht.net.cluster import Cluster
from gossipdht.net.keyrings import KeyringManager, parse_request
from gossipdht.net.messages import BadMessage
from gossipdht.net.peer import PeerClient
from gossipdht.net.remotereplica import handlers
from gossipdht.net.rpc import Admit, RpcResource
from gossipdht.net.settlement import ASK_SECONDS, Settlement, as_text
from gossipdht.web import dashboard, openapi
from gossipdht.web.http import JSON, TEXT_PLAIN, ClientError, failed, header_values, key_from_path, plain, quorum
from gossipdht.web.keyresource import KEY_PREFIX, RING_HEADER, KeyResource
from gossipdht.web.limits import Limits
from gossipdht.web.metrics import Metrics
from gossipdht.web.site import Site
from gossipdht.web.tokens import Tokens

LISTING_PAGE = 1000
OWNERS_PREFIX = b"/dht/owners/"
BULK_PARSERS = {media.TSV.encode(): bulk.parse_tsv, media.JSON.encode(): bulk.parse_json}
#: ``GET /dht/ring?slices=N``: at most this many arcs.
MAX_SLICES = 3600


class RestAPI:
    """The Klein routes of the public API (``/db``, ``/dht``, ``/health``) and the internal ones."""

    app = Klein()
    app.url_map.merge_slashes = False
    log = Logger()

    def __init__(self, coordinator: Coordinator, cluster: Cluster, local: LocalReplica,
                 data_stats: Callable[[], dict], max_value_bytes: int, replicas: int,
                 settlement: Settlement, keyrings: KeyringManager, peers: PeerClient,
                 reactor_stats: Callable[[], dict] = dict, admit: Optional[Admit] = None, metrics: bool = True,
                 limits: Optional[Limits] = None) -> None:
        self.coordinator = coordinator
        self.cluster = cluster
        self.keyrings = keyrings
        self.settlement = settlement
        self.local = local
        self.data_stats = data_stats
        self.reactor_stats = reactor_stats
        self.max_value_bytes = max_value_bytes
        self.replicas = replicas
        #: Asks the other members for their activity (``/dht/activity?cluster=1``).
        self.peers = peers
        self.ui = dashboard.load()
        self.rpc = RpcResource(self._rpc_handlers(), rpc.max_frame_bytes(max_value_bytes), cluster.sealing, admit)
        #: The HTTP port's limits; None: the site's defaults.
        self.limits = limits
        #: None with ``--metrics false``: no ``/metrics``, and requests are neither counted nor timed.
        self.metrics = Metrics(self.node_stats, cluster.members) if metrics else None

    def site(self, tokens: Optional[Tokens] = None) -> Site:
        """The node's HTTP site: Klein's resource, with single-key requests going to the
        plain ``KeyResource`` and calls between nodes to ``RpcResource``; with ``tokens``,
        requests need one."""
        site = Site(self.app.resource(), self.max_value_bytes, prefixes={
            KEY_PREFIX: KeyResource(self.coordinator, self.max_value_bytes, self.replicas,
                                    None if self.metrics is None else self.metrics.requests, self._ring_checksum),
            rpc.PATH: self.rpc,
        }, tokens=tokens, limits=self.limits)
        self.limits = site.limits
        self.rpc.upgraded = site.limits.upgraded
        # Calls between nodes have a budget of their own, of the clients' size: clients cannot take it.
        self.rpc.calls.limit = site.limits.budget.limit
        return site

    def _rpc_handlers(self) -> dict:
        """Every call between nodes: data, membership, transfers and the keyring."""
        return {**handlers(self.local), **self.cluster.handlers(), "keyring": self.keyrings.handler,
                "transfers": lambda body: json.dumps(self.settlement.report(self.cluster.name)).encode(),
                "activity": lambda body: json.dumps(self.activity_report()).encode()}

    # -- keys ----------------------------------------------------------------------

    def _ring_checksum(self) -> str:
        return self.cluster.ring.checksum

    @app.route("/db")
    def keys(self, request: IRequest):
        request.setHeader(RING_HEADER, self._ring_checksum().encode())
        # Every method routes here, or werkzeug would redirect DELETE /db to /db/.
        if request.method == b"POST":
            return self._bulk_write(request)
        if request.method not in (b"GET", b"HEAD"):
            raise MethodNotAllowed(valid_methods=["GET", "HEAD", "POST"])
        return self._list_keys(request)

    async def _bulk_write(self, request: IRequest) -> bytes:
        """Many keys in one request: 200 when all were written, 503 when some were not."""
        if self.metrics is not None:
            self.metrics.requests.watch(request, "bulk_put")
        w = quorum(request, b"w", self.replicas)
        media_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        parse = BULK_PARSERS.get(media_type)
        if parse is None:
            raise ClientError(415, f"a bulk write is {media.TSV} or {media.JSON}")
        try:
            items = parse(request.content.read(), self.max_value_bytes)
        except bulk.BadBulk as e:
            raise ClientError(400, str(e)) from None
        errors = await self.coordinator.put_many(items, media.TEXT, w)  # bulk values are text
        request.setResponseCode(503 if errors else 200)
        request.setHeader(b"content-type", JSON)
        return _json({"stored": len(items) - len(errors), "errors": errors})

    def _list_keys(self, request: IRequest):
        scope = request.args.get(b"scope", [b"primary"])[-1]
        if scope not in (b"primary", b"replica"):
            raise ClientError(400, "scope must be primary (the default) or replica")
        pages = self._pages(primary_only=scope == b"primary")
        if _wants_json(request):
            request.setHeader(b"content-type", JSON)
            chunks = _json_listing(pages)
        else:
            request.setHeader(b"content-type", TEXT_PLAIN)
            chunks = _text_listing(pages)
        if request.method == b"HEAD":
            return b""
        return _stream(request, chunks)

    def _pages(self, primary_only: bool) -> Iterator[list[str]]:
        after: Optional[str] = None
        while True:
            page = self.coordinator.keys(after, LISTING_PAGE, primary_only)
            if not page:
                return
            yield page
            after = page[-1]

    # -- cluster and health --------------------------------------------------------

    @app.route("/dht/peers", methods=["GET", "HEAD"])
    def peers(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", TEXT_PLAIN)
        return _lines(self.cluster.peers())

    @app.route("/dht/members", methods=["GET", "HEAD"])
    def members(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", JSON)
        return _json(self.cluster.members())

    @app.route("/dht/stats", methods=["GET", "HEAD"])
    def stats(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", JSON)
        return _json(self.node_stats())

    def node_stats(self) -> dict:
        """The node's counters: the body of ``/dht/stats``, and what ``/metrics`` reads."""
        return {"gossip": self.cluster.stats(), "data": self.data_stats(),
                "reactor": self.reactor_stats(), "internal_refused": self.rpc.refused,
                "http": {} if self.limits is None else {**self.limits.stats(),
                                                        "internal_inflight_bytes": self.rpc.calls.used,
                                                        "internal_reads_paused": self.rpc.calls.pauses}}

    @app.route("/metrics", methods=["GET", "HEAD"])
    def metrics_scrape(self, request: IRequest) -> bytes:
        """The node's metrics for Prometheus (OpenMetrics when the scraper asks for it)."""
        if self.metrics is None:
            raise ClientError(404, "metrics are off on this node (--metrics false)")
        body, content_type = self.metrics.exposition(request.getHeader(b"accept"))
        request.setHeader(b"content-type", content_type)
        return body

    @app.route("/dht/ring", methods=["GET", "HEAD"])
    def ring(self, request: IRequest) -> bytes:
        """The ring's checksum and shares; with ``?slices=N``, also the primary owner of
        each of N equal arcs, as an index into ``members`` (the dashboard draws them)."""
        ring = self.cluster.ring
        slices = request.args.get(b"slices", [b""])[-1].decode("latin-1")
        if slices and not (slices.isdigit() and 1 <= int(slices) <= MAX_SLICES):
            raise ClientError(400, f"slices={slices} is not a whole number from 1 to {MAX_SLICES}")
        shares, copies = ring.shares(), ring.replica_shares(self.replicas)
        answer = {
            "checksum": ring.checksum, "vnodes": ring.vnodes, "replicas": self.replicas,
            "members": [{"name": name, "share": round(shares[name], 6), "replica_share": round(copies[name], 6)}
                        for name in ring.members],
        }
        if slices:
            index = {name: i for i, name in enumerate(ring.members)}
            answer["slices"] = [index[name] for name in ring.slices(int(slices))]
        request.setHeader(b"content-type", JSON)
        return _json(answer)

    @app.route("/dht/owners/", branch=True, methods=["GET", "HEAD"])
    def owners(self, request: IRequest) -> bytes:
        """The "Owns" operation: the key's preference list, in order."""
        key = key_from_path(request, OWNERS_PREFIX)
        owners = self.cluster.owners(key, self.replicas)
        # Where the key sits, as a fraction of the ring clockwise from token 0 (the dashboard marks it).
        request.setHeader(b"gossipdht-ring-position", b"%.9f" % (token(key) / RING_SIZE))
        if _wants_json(request):
            request.setHeader(b"content-type", JSON)
            return _json([{"name": m.name, "host": m.host, "port": m.api_port} for m in owners])
        request.setHeader(b"content-type", TEXT_PLAIN)
        return _lines(f"{m.name} {Address(m.host, m.api_port)}" for m in owners)

    @app.route("/dht/join", methods=["POST", "PUT"])
    async def join(self, request: IRequest) -> bytes:
        try:
            seeds = parse_seeds(request.content.read().decode("utf-8"))
        except (AddressError, UnicodeDecodeError) as e:
            raise ClientError(400, f"bad join request: {e}") from None
        request.setHeader(b"content-type", TEXT_PLAIN)
        return (await self.cluster.join(seeds)).encode() + b"\n"

    @app.route("/dht/transfers", methods=["GET", "HEAD"])
    async def transfers(self, request: IRequest) -> bytes:
        """What this node (``?cluster=1``: every member) still moves, and the ring it settled."""
        cluster = _cluster(request)
        reports = [self.settlement.report(self.cluster.name)]
        if cluster:
            others = self.cluster.others()
            answers = await self.settlement.ask(others)
            reports += [answers[m.name] or _unreachable(m) for m in others]
        if _wants_json(request):
            request.setHeader(b"content-type", JSON)
            return _json(reports if cluster else reports[0])
        request.setHeader(b"content-type", TEXT_PLAIN)
        return "".join(f"{r['node']} did not answer\n" if r.get("unreachable") else as_text(r)
                       for r in reports).encode()

    @app.route("/dht/activity", methods=["GET", "HEAD"])
    async def activity(self, request: IRequest) -> bytes:
        """The requests this node (``?cluster=1``: every live member) served in the last
        minutes, by operation, and the keys it holds."""
        cluster = _cluster(request)
        reports = [self.activity_report()]
        if cluster:
            reports += await gatherResults([ensureDeferred(self._activity_of(m)) for m in self.cluster.others()])
        request.setHeader(b"content-type", JSON)
        return _json(reports if cluster else reports[0])

    def activity_report(self) -> dict:
        """This node's part of ``/dht/activity``; ``requests`` is None with ``--metrics false``."""
        return {"node": self.cluster.name, "keys_held": self.data_stats()["keys_held"],
                "requests": None if self.metrics is None else self.metrics.activity()}

    async def _activity_of(self, member: Member) -> dict:
        try:
            return await self.peers.activity(member.api_address, ASK_SECONDS)
        except PeerError as e:
            self.log.debug("cannot ask {name} for its activity: {error}", name=member.name, error=e)
            return _unreachable(member)

    @app.route("/dht/remove", methods=["POST"])
    async def remove(self, request: IRequest) -> bytes:
        """Take a dead member off the ring now (its name is the body), without waiting
        for the rebalance delay; answers once its data has new owners."""
        try:
            name = request.content.read().decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ClientError(400, "the body is a member's name, in UTF-8") from None
        if not name:
            raise ClientError(400, "the body is the name of the member to remove")
        request.setHeader(b"content-type", TEXT_PLAIN)
        return (await self.cluster.remove(name)).encode() + b"\n"

    @app.route("/dht/keyring", methods=["POST"])
    async def keyring(self, request: IRequest) -> bytes:
        """``{"action": "install"|"use"|"remove"|"list", "key": ...}`` on every live member;
        502 unless every one of them answered and did it."""
        done, answer = await self.keyrings.everywhere(parse_request(request.content.read()))
        request.setResponseCode(200 if done else 502)
        request.setHeader(b"content-type", JSON)
        return _json(answer)

    @app.route("/dht/leave", methods=["GET", "POST"])
    async def leave(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", TEXT_PLAIN)
        if request.method == b"HEAD":  # HEAD must not act
            return b""
        return (await self.cluster.leave()).encode() + b"\n"

    @app.route("/openapi.json", methods=["GET", "HEAD"])
    def openapi_document(self, request: IRequest) -> bytes:
        """The OpenAPI 3.1 description of these routes (``openapi``)."""
        request.setHeader(b"content-type", JSON)
        return openapi.BODY

    @app.route("/ui", methods=["GET", "HEAD"])
    def ui(self, request: IRequest) -> bytes:
        """The dashboard (``dashboard``)."""
        return self._ui_file(request, dashboard.PAGE)

    @app.route("/ui/<name>", methods=["GET", "HEAD"])
    def ui_file(self, request: IRequest, name: str) -> bytes:
        if name not in self.ui:
            raise ClientError(404, f"the dashboard has no file {name}")
        return self._ui_file(request, name)

    def _ui_file(self, request: IRequest, name: str) -> bytes:
        request.setHeader(b"content-type", dashboard.TYPES[name])
        # Asked again after an upgrade of the node, never run from another type.
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return self.ui[name]

    @app.route("/health", methods=["GET", "HEAD"])
    def health(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", TEXT_PLAIN)
        return b"OK\n"

    # -- errors --------------------------------------------------------------------

    @app.handle_errors(BadMessage)
    def bad_message(self, request: IRequest, failure) -> bytes:
        return plain(request, 400, f"bad internal message: {failure.value}")

    @app.handle_errors(NotFound, RequestRedirect)
    def not_found(self, request: IRequest, failure) -> bytes:
        return plain(request, 404, "no such resource")

    @app.handle_errors(MethodNotAllowed)
    def method_not_allowed(self, request: IRequest, failure) -> bytes:
        request.setHeader(b"allow", ", ".join(failure.value.valid_methods).encode())
        return plain(request, 405, f"method {request.method.decode('latin-1')} not allowed here")

    @app.handle_errors(Exception)
    def error(self, request: IRequest, failure) -> Optional[bytes]:
        return failed(request, failure, self.log)


def _cluster(request: IRequest) -> bool:
    """``?cluster=1``: every live member's answer, not this node's alone."""
    cluster = request.args.get(b"cluster", [b"0"])[-1]
    if cluster not in (b"0", b"1"):
        raise ClientError(400, "cluster must be 0 or 1")
    return cluster == b"1"


def _unreachable(member: Member) -> dict:
    return {"node": member.name, "unreachable": True}


def _wants_json(request: IRequest) -> bool:
    """``?format=json``, or JSON named in ``Accept``."""
    return request.args.get(b"format") == [b"json"] or JSON in b"".join(
        header_values(request, b"accept")
    )


def _lines(lines: Iterable[str]) -> bytes:
    """A text answer of one item a line, each line ending in CRLF (so that a shell's
    prompt starts on a line of its own after ``curl``)."""
    return b"".join(line.encode() + b"\r\n" for line in lines)


def _json(value) -> bytes:
    """A JSON answer, ending in a line break as the text answers do."""
    return json.dumps(value).encode() + b"\n"


# The key listing keeps its framing, keys separated by CRLF with none after the last,
# which the clients of the API split on.
def _text_listing(pages: Iterator[list[str]]) -> Iterator[bytes]:
    separator = b""
    for page in pages:
        yield separator + "\r\n".join(page).encode()
        separator = b"\r\n"


def _json_listing(pages: Iterator[list[str]]) -> Iterator[bytes]:
    separator = b"["
    for page in pages:
        yield separator + ",".join(json.dumps(key) for key in page).encode()
        separator = b","
    yield b"[]" if separator == b"[" else b"]"


class _ListingProducer:
    """Writes a listing chunk by chunk, pausing while the client reads slowly."""

    def __init__(self, request: IRequest, chunks: Iterator[bytes]) -> None:
        self._task = cooperate(self._write(request, chunks))

    @staticmethod
    def _write(request: IRequest, chunks: Iterator[bytes]) -> Iterator[None]:
        for chunk in chunks:
            request.write(chunk)
            yield None

    def pauseProducing(self) -> None:
        self._task.pause()

    def resumeProducing(self) -> None:
        self._task.resume()

    def stopProducing(self) -> None:
        try:
            self._task.stop()
        except TaskDone:
            pass

    def whenDone(self):
        return self._task.whenDone()


def _stream(request: IRequest, chunks: Iterator[bytes]):
    producer = _ListingProducer(request, chunks)
    request.registerProducer(producer, True)

    def finished(result):
        request.unregisterProducer()
        if isinstance(result, Failure):
            result.trap(TaskStopped)  # the client disconnected
        return None

    return producer.whenDone().addBoth(finished)
