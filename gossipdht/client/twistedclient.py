"""``TwistedClient``: the Twisted face of the Python client, on treq.

The same requests (``operations``) and the same choice of node (``routing``) as the
blocking ``Client``, without blocking the reactor: every method returns a Deferred, which
``await`` takes in a coroutine (``Deferred.fromCoroutine``, ``ensureDeferred``).  Kept
connections come from one ``HTTPConnectionPool`` per client; ``close()`` closes them.
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Optional, Sequence, Union

import treq
from treq.client import HTTPClient
from twisted.internet.defer import Deferred, FirstError, ensureDeferred, gatherResults
from twisted.internet.ssl import Certificate, trustRootFromCertificates
from twisted.python.failure import Failure
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool

from gossipdht.client import operations
from gossipdht.client.blocking import ATTEMPTS, seed_addresses
from gossipdht.client.http import KEPT_PER_NODE, TIMEOUT, NodeError, RequestError, Response, Unreachable, one_line
from gossipdht.client.operations import Call, Value
from gossipdht.client.routing import ClusterView, Member, Router
from gossipdht.core.address import Address

#: Below the nodes' idle timeout of 60 s, so that a kept connection is not one they closed.
IDLE_SECONDS = 50


class TwistedClient:
    """A ring-aware client of a gossipdht cluster for Twisted programs: every method returns a Deferred.

    Given one or more of its nodes as ``"host:port"``; ``cacert``: speak HTTPS, trusting
    that CA; ``token``: the API token.  Errors fail the Deferred with ``RequestError``:
    ``NodeError`` with the node's one-line message, or ``Unreachable`` when no node answered."""

    def __init__(self, nodes: Sequence[Union[str, Address]], cacert: Optional[str] = None, token: Optional[str] = None,
                 timeout: float = TIMEOUT, reactor=None, rng: Optional[random.Random] = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.router = Router(seed_addresses(nodes), rng or random.Random())
        self._reactor = reactor
        self._scheme = "http" if cacert is None else "https"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = KEPT_PER_NODE
        self._pool.cachedConnectionTimeout = IDLE_SECONDS
        self._http = HTTPClient(Agent(reactor, contextFactory=_trusting(cacert), pool=self._pool))
        #: Those waiting for the reading of the members under way.
        self._waiting: list[Deferred[None]] = []

    # -- the operations --------------------------------------------------------------------

    def get(self, key: str, r: Optional[int] = None) -> Deferred[Optional[Value]]:
        """The value of ``key`` (bytes, with ``content_type`` and ``etag``), or None."""
        return ensureDeferred(self._run(operations.get(key, r)))

    def exists(self, key: str, r: Optional[int] = None) -> Deferred[bool]:
        return ensureDeferred(self._run(operations.exists(key, r)))

    def put(self, key: str, value: Union[bytes, str], content_type: Optional[str] = None,
            w: Optional[int] = None) -> Deferred[str]:
        """Store ``value`` (text: as UTF-8 text; bytes: as they are); the new version's ETag."""
        return ensureDeferred(self._run(operations.put(key, value, content_type, w)))

    def delete(self, key: str, w: Optional[int] = None) -> Deferred[None]:
        return ensureDeferred(self._run(operations.delete(key, w)))

    def put_many(self, items: Mapping[str, Union[str, bytes]], w: Optional[int] = None) -> Deferred[dict[str, str]]:
        """Store many text values through the bulk endpoint, one request per first owner, all
        at once; the keys that fell short of their write quorum, each with why."""
        async def run() -> dict[str, str]:
            await self._view()
            groups = self.router.split(list(items), self._reactor.seconds())
            answers = await gatherResults(
                [ensureDeferred(self._run(operations.put_many({key: items[key] for key in group}, w)))
                 for group in groups], consumeErrors=True).addErrback(_first_error)
            return {key: why for answer in answers for key, why in answer.items()}
        return ensureDeferred(run())

    def keys(self, scope: str = "primary") -> Deferred[list[str]]:
        """Every key in the cluster, sorted, as ``Client.keys`` lists them."""
        async def run() -> list[str]:
            view = await self._view()
            found: set[str] = set()
            for member in [m for m in view.members.values() if m.live]:
                found.update(await self._send(member.address, operations.keys(scope)))
            return sorted(found)
        return ensureDeferred(run())

    def owners(self, key: str) -> Deferred[list[Member]]:
        """The key's preference list, computed on the client's ring (as ``/dht/owners`` gives it)."""
        async def run() -> list[Member]:
            return (await self._view()).owners(key)
        return ensureDeferred(run())

    def close(self) -> Deferred[None]:
        """Close the kept connections."""
        return self._pool.closeCachedConnections()

    # -- sending ---------------------------------------------------------------------------

    async def _run(self, call: Call) -> Any:
        await self._view()
        error: Optional[RequestError] = None
        for address in self.router.targets(call.route, self._reactor.seconds())[:ATTEMPTS]:
            try:
                return await self._send(address, call)
            except Unreachable as e:
                error = e
        raise error or Unreachable("no node to ask")

    async def _send(self, address: Address, call: Call) -> Any:
        response = await self._request(address, call)
        self.router.answered(operations.ring_checksum(response))
        self._refresh_if_due()
        return call.read(response)

    async def _request(self, address: Address, call: Call) -> Response:
        """One request; Unreachable (and the node scored) when it gets no whole answer."""
        url = f"{self._scheme}://{address}{call.path}"
        try:
            answer = await self._http.request(call.method, url, data=call.body, headers={**self._headers, **call.headers},
                                              timeout=self._timeout)
            # treq's timeout stops at the headers: the body gets one of its own.
            body = await treq.content(answer).addTimeout(self._timeout, self._reactor)
        except Exception as e:  # whatever kept the answer from coming: the next node is tried
            self.router.failed(address, self._reactor.seconds())
            self._refresh_if_due()
            reason = getattr(e, "reasons", None)
            raise Unreachable(f"cannot reach {address}: {one_line(str(reason[0].value if reason else e).encode())}"
                              f" ({type(e).__name__})") from None
        headers = {name.decode("latin-1").lower(): values[-1].decode("latin-1")
                   for name, values in answer.headers.getAllRawHeaders()}
        response = Response(answer.code, headers, body)
        if response.status not in call.expect:
            raise NodeError(str(address), response.status, one_line(body) or answer.phrase.decode("latin-1"))
        return response

    # -- the view of the cluster -------------------------------------------------------------

    async def _view(self) -> ClusterView:
        while self.router.view is None:
            await self._refresh()
        return self.router.view

    def _refresh_if_due(self) -> None:
        if self.router.view is not None and self.router.refresh_due(self._reactor.seconds()):
            self._refresh().addErrback(lambda _: None)  # the old view serves until a node answers again

    def _refresh(self) -> Deferred[None]:
        """Read the members and the ring from the best node that answers; one reading at a
        time, which every caller meanwhile waits for."""
        waiting: Deferred[None] = Deferred()
        self._waiting.append(waiting)
        if len(self._waiting) == 1:
            ensureDeferred(self._read_members()).addBoth(self._members_read)
        return waiting

    def _members_read(self, result: Optional[Failure]) -> None:
        waiting, self._waiting = self._waiting, []
        for caller in waiting:
            if isinstance(result, Failure):
                caller.errback(result)
            else:
                caller.callback(None)

    async def _read_members(self) -> None:
        error: Optional[RequestError] = None
        for address in self.router.refreshing(self._reactor.seconds()):
            try:
                ring = (await self._request(address, operations.ring())).json()
                members = (await self._request(address, operations.members())).json()
            except Unreachable as e:
                error = e
                continue
            try:
                view = ClusterView.from_answers(members, ring)
            except ValueError as e:
                raise RequestError(f"{address} does not describe a gossipdht cluster: {e}") from None
            self.router.install(view, ring.get("checksum"))
            return
        raise error or Unreachable("no node to ask")


def _first_error(failure: Failure) -> Failure:
    """The error of the first request of several that failed, rather than FirstError."""
    return failure.value.subFailure if failure.check(FirstError) else failure


def _trusting(cacert: Optional[str]) -> BrowserLikePolicyForHTTPS:
    """The TLS policy: the nodes' certificates checked against ``cacert`` (None: the platform's CAs)."""
    if cacert is None:
        return BrowserLikePolicyForHTTPS()
    try:
        with open(cacert, "rb") as f:
            authority = Certificate.loadPEM(f.read())
    except OSError as e:
        raise RequestError(f"--cacert {cacert}: {e.strerror}") from None
    return BrowserLikePolicyForHTTPS(trustRootFromCertificates([authority]))
