"""``Client``: the blocking face of the Python client, for scripts, threads and web apps.

Each request goes to the first live owner of its key (``routing``), over a kept
connection of urllib3's pool for that node (``http``); a node that does not answer is
scored and the next one is tried.  Thread-safe: threads share the pools and the view.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from gossipdht.client import operations
from gossipdht.client.http import TIMEOUT, Node, RequestError, Response, Unreachable, pool_manager
from gossipdht.client.operations import Call, Value
from gossipdht.client.routing import ClusterView, Member, Router
from gossipdht.core.address import Address, parse_address

#: Nodes tried for one request before its last error is raised.
ATTEMPTS = 4


def seed_addresses(nodes: Sequence[Union[str, Address]]) -> list[Address]:
    """``"host:port"`` strings (or Addresses) as Addresses; ValueError names a bad one."""
    return [node if isinstance(node, Address) else parse_address(node, "node") for node in nodes]


class Client:
    """A ring-aware client of a gossipdht cluster, given one or more of its nodes as ``"host:port"``.

    ``cacert``: speak HTTPS, trusting that CA; ``token``: the API token (``--api-tokens``).
    Errors raise ``RequestError``: ``NodeError`` with the node's one-line message, or
    ``Unreachable`` when no node answered."""

    def __init__(self, nodes: Sequence[Union[str, Address]], cacert: Optional[str] = None, token: Optional[str] = None,
                 timeout: float = TIMEOUT, clock: Callable[[], float] = time.monotonic,
                 rng: Optional[random.Random] = None) -> None:
        self.router = Router(seed_addresses(nodes), rng or random.Random())
        self._pools = pool_manager(cacert)
        self._template = Node("", 0, cacert, token, timeout, self._pools)
        self._clock = clock
        self._lock = threading.Lock()  # the router's state
        self._refresh_lock = threading.Lock()  # one reading of the members at a time

    # -- the operations --------------------------------------------------------------------

    def get(self, key: str, r: Optional[int] = None) -> Optional[Value]:
        """The value of ``key`` (bytes, with ``content_type`` and ``etag``), or None."""
        return self._run(operations.get(key, r))

    def exists(self, key: str, r: Optional[int] = None) -> bool:
        return self._run(operations.exists(key, r))

    def put(self, key: str, value: Union[bytes, str], content_type: Optional[str] = None,
            w: Optional[int] = None) -> str:
        """Store ``value`` (text: as UTF-8 text; bytes: as they are); the new version's ETag."""
        return self._run(operations.put(key, value, content_type, w))

    def delete(self, key: str, w: Optional[int] = None) -> None:
        self._run(operations.delete(key, w))

    def put_many(self, items: Mapping[str, Union[str, bytes]], w: Optional[int] = None) -> dict[str, str]:
        """Store many text values through the bulk endpoint, one request per first owner;
        the keys that fell short of their write quorum, each with why (empty: all stored)."""
        self._view()
        with self._lock:
            groups = self.router.split(list(items), self._clock())
        errors: dict[str, str] = {}
        for group in groups:
            errors.update(self._run(operations.put_many({key: items[key] for key in group}, w)))
        return errors

    def keys(self, scope: str = "primary") -> list[str]:
        """Every key in the cluster, sorted: each live member's primary keys (``scope="replica"``:
        every copy each holds, so a key comes once however many members hold it).  Unreachable
        when a live member does not answer, rather than a listing that misses its keys."""
        found: set[str] = set()
        for member in self._live_members():
            found.update(self._send(self._node(member.address), operations.keys(scope)))
        return sorted(found)

    def owners(self, key: str) -> list[Member]:
        """The key's preference list, computed on the client's ring (as ``/dht/owners`` gives it)."""
        return self._view().owners(key)

    def members(self) -> list[Member]:
        """Every member the client knows, as it last read them."""
        return list(self._view().members.values())

    def close(self) -> None:
        """Close the kept connections (a request after it opens new ones)."""
        self._pools.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- sending ---------------------------------------------------------------------------

    def _node(self, address: Address) -> Node:
        return self._template.at(address.host, address.port)

    def _live_members(self) -> list[Member]:
        return [member for member in self._view().members.values() if member.live]

    def _run(self, call: Call) -> Any:
        """``call`` sent to the best node for it, then the next ones while they do not answer."""
        self._view()
        with self._lock:
            targets = self.router.targets(call.route, self._clock())[:ATTEMPTS]
        error: Optional[RequestError] = None
        for address in targets:
            try:
                return self._send(self._node(address), call)
            except Unreachable as e:
                error = e
        raise error or Unreachable("no node to ask")

    def _send(self, node: Node, call: Call) -> Any:
        """``call`` to ``node``: its answer read, and the ring checksum it carries noted."""
        try:
            response = _request(node, call)
        except Unreachable:
            with self._lock:
                self.router.failed(Address(node.host, node.port), self._clock())
            self._refresh_if_due()
            raise
        with self._lock:
            self.router.answered(operations.ring_checksum(response))
        self._refresh_if_due()
        return call.read(response)

    # -- the view of the cluster -------------------------------------------------------------

    def _view(self) -> ClusterView:
        """The view, read first if the client has none yet."""
        while self.router.view is None:
            self._refresh(wait=True)
        return self.router.view

    def _refresh_if_due(self) -> None:
        with self._lock:
            due = self.router.view is not None and self.router.refresh_due(self._clock())
        if due:
            try:
                self._refresh(wait=False)
            except RequestError:
                pass  # the old view serves until a node answers again

    def _refresh(self, wait: bool) -> None:
        """Read the members and the ring from the best node that answers; a thread that
        finds another reading them waits for it (``wait``) or goes on with the old view."""
        if not self._refresh_lock.acquire(blocking=wait):
            return
        try:
            with self._lock:
                if self.router.view is not None and not self.router.refresh_due(self._clock()):
                    return  # another thread read them meanwhile
                sources = self.router.refreshing(self._clock())
            error: Optional[RequestError] = None
            for address in sources:
                node = self._node(address)
                try:
                    ring = _asked(node, operations.ring())
                    view = ClusterView.from_answers(_asked(node, operations.members()), ring)
                except Unreachable as e:
                    with self._lock:
                        self.router.failed(address, self._clock())
                    error = e
                    continue
                except ValueError as e:
                    raise RequestError(f"{node} does not describe a gossipdht cluster: {e}") from None
                with self._lock:
                    self.router.install(view, ring.get("checksum"))
                return
            raise error or Unreachable("no node to ask")
        finally:
            self._refresh_lock.release()


def _request(node: Node, call: Call) -> Response:
    return node.request(call.method, call.path, call.body, dict(call.headers), call.expect)


def _asked(node: Node, call: Call) -> Any:
    """``call``'s answer from ``node``, read."""
    return call.read(_request(node, call))
