"""A node's place in the cluster: the membership core wired to the reactor and network.

``Cluster`` runs the core's timers on the reactor, sends its datagrams over UDP, carries
its push/pull exchanges and TCP probes over HTTP, and orchestrates the operator's
``join``, ``leave`` and ``remove``, which answer only once the rest of the cluster agrees
and has moved its data.  The ring is made of the live members and of the dead ones
within their rebalance delay (``ringmembers``).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Awaitable, Callable, Optional

from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import deferLater
from twisted.logger import Logger

from gossipdht.core.address import Address
from gossipdht.core.errors import PeerError, Refusal
from gossipdht.core.ring import Ring
from gossipdht.core.sealing import REASONS, Refused, Sealing
from gossipdht.membership.member import Datagram, Member, Outgoing, State, StreamPing, SwimConfig, SyncRequest
from gossipdht.membership.ringmembers import ring_members
from gossipdht.membership.swim import Membership
from gossipdht.membership.wire import Alive, Suspect, WireError, pack_state, unpack_state
from gossipdht.net.peer import PeerClient
from gossipdht.net.udp import GossipProtocol

POLL_SECONDS = 0.05


async def _nothing(*args) -> None:
    pass


#: What ``Cluster.data_moved`` is awaited with: the members to ask (called again on each
#: poll) and the checksum of the ring they must have settled.
MembersToAsk = Callable[[], list[Member]]


def _milliseconds(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(seconds * 1000, 1)


class ClusterError(Refusal):
    """A join or leave that cannot be done; ``code`` is the HTTP status to answer."""


class Cluster:
    """The membership core on the reactor: its timers, UDP and TCP messages, joins, leaves and the ring."""

    log = Logger()

    def __init__(self, name: str, host: str, gossip_port: int, api_port: int, reactor,
                 peers: PeerClient, config: SwimConfig = SwimConfig(), settle_seconds: float = 10.0,
                 sync_timeout: float = 5.0, rebalance_delay: float = 0.0, max_clock_offset: float = 0.5,
                 sealing: Sealing = Sealing()) -> None:
        self.name = name
        self._address = (host, gossip_port, api_port)
        self._reactor = reactor
        self._peers = peers
        self.sealing = sealing
        # Datagrams are sealed after they are filled: the seal's bytes come off the budget.
        self._config = dataclasses.replace(config, max_datagram=config.max_datagram - sealing.overhead)
        #: Bytes of the datagrams sent, as sealed.
        self.bytes_sent = 0
        #: Datagrams refused before they reached the membership core, by reason.
        self.unopened = dict.fromkeys(REASONS, 0)
        #: Why this node serves no data: the cluster it rejoins at start refused it (or None).
        self.refused_by_cluster: Optional[str] = None
        self._rng = random.Random()
        self._settle_seconds = settle_seconds
        self._sync_timeout = sync_timeout
        self._rebalance_delay = rebalance_delay
        self._max_clock_offset = max_clock_offset
        #: Why this node coordinates no writes: its clock is off most members' (or None).
        self.clock_trouble: Optional[str] = None
        self._call: Optional[IDelayedCall] = None
        #: When the next down member's rebalance delay ends.
        self._ring_call: Optional[IDelayedCall] = None
        self._busy: Optional[str] = None
        #: The members this node left: their push/pull must not pull it back in.
        self._left_behind: set[str] = set()
        self.protocol = GossipProtocol(self._received)
        #: Called with no arguments whenever the member list changes, and when the ring
        #: or the set of its members that are down changes.
        self.on_change: list[Callable[[], None]] = []
        self.on_ring_change: list[Callable[[], None]] = []
        #: Awaited by ``leave`` with the names of the other members before leaving (hands
        #: the data off), and by ``join``, ``leave`` and ``remove`` once membership agrees,
        #: until the members asked have settled the ring (raises ClusterError if not).
        self.before_leave: Callable[[list[str]], Awaitable[None]] = _nothing
        self.data_moved: Callable[[MembersToAsk, Callable[[], str], Callable[[], frozenset[str]]],
                                  Awaitable[None]] = _nothing
        self.core = self._new_core(int(reactor.seconds()))
        self.ring = Ring([name])
        #: Members on the ring that are dead, within their rebalance delay.
        self.down: frozenset[str] = frozenset()

    # -- the core and its timers ----------------------------------------------------------

    def _new_core(self, incarnation: int) -> Membership:
        core = Membership(self.name, *self._address, now=self._reactor.seconds(), rng=self._rng,
                          config=self._config, incarnation=incarnation,
                          log=lambda line: self.log.warn("{line}", line=line))
        core.listeners.append(self._changed)
        return core

    def _changed(self, event) -> None:
        member = event.member
        self.log.info("member {name} ({host}:{port}) is now {state}", name=member.name,
                      host=member.host, port=member.api_port, state=member.state.value)
        self._membership_changed()

    def _membership_changed(self) -> None:
        """Recompute the ring, then tell the subscribers."""
        now = self._reactor.seconds()
        placed = ring_members(self.core.members.values(), now, self._rebalance_delay)
        if self._ring_call is not None and self._ring_call.active():
            self._ring_call.cancel()
        self._ring_call = None
        if placed.next_change is not None:
            self._ring_call = self._reactor.callLater(placed.next_change - now, self._delay_over)
        changed = placed.names != self.ring.members or placed.down != self.down
        if placed.names != self.ring.members:
            self.ring = Ring(placed.names)
        self.down = placed.down
        if changed:
            for listener in self.on_ring_change:
                listener()
        for listener in self.on_change:
            listener()

    def _delay_over(self) -> None:
        self._ring_call = None
        self.log.info("rebalancing: the members dead for {delay:g} s leave the ring", delay=self._rebalance_delay)
        self._membership_changed()

    def listening(self, gossip_port: int, api_port: int) -> None:
        """The ports this node listens on, known once it listens (an option may say 0);
        called before ``start``, so the core that announces them is still a new one."""
        host = self._address[0]
        if (gossip_port, api_port) != self._address[1:]:
            self._address = (host, gossip_port, api_port)
            self.core = self._new_core(int(self._reactor.seconds()))

    def start(self) -> None:
        self._reschedule()

    def stop(self) -> None:
        for call in (self._call, self._ring_call):
            if call is not None and call.active():
                call.cancel()
        self._call = self._ring_call = None

    def _reschedule(self) -> None:
        deadline = self.core.next_deadline()
        delay = max(0.0, deadline - self._reactor.seconds())
        if self._call is not None and self._call.active():
            self._call.reset(delay)
        else:
            self._call = self._reactor.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._call = None
        self._dispatch(self.core.tick(self._reactor.seconds()))
        self._check_clock()

    def _check_clock(self) -> None:
        others = [m.name for m in self.others()]
        off = self.core.offsets.off_from_most(others, self._max_clock_offset)
        trouble = None
        if off:
            worst = max(abs(self.core.offsets.offset(name)) for name in off)
            trouble = (f"this node's clock is off by more than {self._max_clock_offset * 1000:g} ms from "
                       f"{len(off)} of the {len(others)} other members (up to {worst * 1000:.0f} ms): "
                       "it coordinates no writes until it is back within --max-clock-offset")
        if (trouble is None) != (self.clock_trouble is None):
            if trouble:
                self.log.error("{trouble}", trouble=trouble)
            else:
                self.log.info("this node's clock is back within {limit:g} ms of most members; it coordinates "
                              "writes again", limit=self._max_clock_offset * 1000)
        self.clock_trouble = trouble

    def _received(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            data = self.sealing.open(data, b"gossip")
        except Refused as e:
            self.unopened[e.reason] += 1
            return
        self._dispatch(self.core.receive(self._reactor.seconds(), source, data))

    def _dispatch(self, outgoing: list[Outgoing]) -> None:
        for item in outgoing:
            if isinstance(item, Datagram):
                data = self.sealing.seal(item.data, b"gossip")
                self.bytes_sent += len(data)
                try:
                    self.protocol.send(data, item.address)
                except OSError as e:
                    self.log.debug("cannot send to {address}: {error}", address=item.address, error=e)
            elif isinstance(item, SyncRequest):
                ensureDeferred(self._background_sync(item.address))
            elif isinstance(item, StreamPing):
                ensureDeferred(self._stream_ping(item))
        self._reschedule()

    async def _background_sync(self, address: tuple[str, int]) -> None:
        try:
            await self.push_pull(address)
        except (PeerError, WireError) as e:
            self.log.debug("push/pull with {address} failed: {error}", address=Address(*address), error=e)

    async def _stream_ping(self, ping: StreamPing) -> None:
        core = self.core
        timeout = core.time_left(ping.seq, self._reactor.seconds())
        if timeout <= 0:
            return
        try:
            answered = await self._peers.ping(ping.address, ping.target, timeout)
        except PeerError:
            return
        if answered and core is self.core:
            core.stream_ack(self._reactor.seconds(), ping.seq)
            self._reschedule()

    # -- push/pull ------------------------------------------------------------------------

    async def push_pull(self, address: tuple[str, int]) -> set[str]:
        """Exchange full state with the node whose API is at ``address``; the names of
        the live members it knows."""
        body = await self._peers.push_pull(address, pack_state(self.name, self.core.local_state()), self._sync_timeout)
        _, state = unpack_state(body)
        self.core.merge_state(self._reactor.seconds(), state)
        self._reschedule()
        return {m.name for m in state if isinstance(m, (Alive, Suspect))}

    def answer_push_pull(self, body: bytes) -> bytes:
        """The other side of ``push_pull``; refuses a sender whose name is taken."""
        try:
            sender, state = unpack_state(body)
        except WireError as e:
            raise ClusterError(400, f"bad member list: {e}") from None
        if sender in self._left_behind and len(self.core.live_members()) == 1:
            raise ClusterError(409, f"{self.name} left the cluster of {sender}; it comes back only by joining")
        claim = next((m for m in state if isinstance(m, Alive) and m.name == sender), None)
        holder = self.core.conflicts_with(claim) if claim is not None else None
        if holder is not None:
            self.log.warn("refused {sender} from {host}:{port}: the name belongs to {holder_host}:{holder_port}",
                          sender=sender, host=claim.host, port=claim.api_port,
                          holder_host=holder.host, holder_port=holder.api_port)
            raise ClusterError(409, f"the name {sender} belongs to the live member at {holder.host}:{holder.api_port}")
        self.core.merge_state(self._reactor.seconds(), state)
        self._reschedule()
        return pack_state(self.name, self.core.local_state())

    def handlers(self) -> dict[str, Callable[[bytes], bytes]]:
        """What other nodes call on this one over the internal RPC: push/pull, the TCP
        probe (its body is the name of the member meant) and the member list."""
        def ping(name: bytes) -> bytes:
            if name.decode("utf-8", "replace") != self.name:
                raise ClusterError(404, f"this node is not {name.decode('utf-8', 'replace')}")
            return b""

        return {"pushpull": self.answer_push_pull, "ping": ping,
                "peers": lambda body: "\r\n".join(self.peers()).encode()}

    # -- what the API shows -------------------------------------------------------------

    def live_members(self) -> list[Member]:
        return self.core.live_members()

    def api_address(self, name: str) -> tuple[str, int]:
        """Where a member's HTTP API listens; PeerError if it is not a member."""
        member = self.core.members.get(name)
        if member is None:
            raise PeerError(f"{name} is not a member")
        return member.api_address

    def owners(self, key: str, n: int) -> list[Member]:
        """The key's preference list: the first ``n`` distinct live members on the ring."""
        return [self.core.members[name] for name in self.ring.preference_list(key, n)]

    def peers(self) -> list[str]:
        """Live member names (suspects included), this node first, the others sorted."""
        others = sorted(m.name for m in self.core.live_members() if m.name != self.name)
        return [self.name] + others

    def members(self) -> list[dict]:
        now = self._reactor.seconds()
        ordered = sorted(self.core.members.values(), key=lambda m: (m.name != self.name, m.name))
        return [
            {"name": m.name, "address": m.host, "port": m.api_port, "gossip_port": m.port,
             "state": m.state.value, "incarnation": m.incarnation,
             "since_seconds": round(now - m.since, 3), "in_ring": m.name in self.ring.members,
             "clock_offset_ms": _milliseconds(self.core.offsets.offset(m.name)) if m.name != self.name else 0}
            for m in ordered
        ]

    def stats(self) -> dict:
        s = self.core.stats
        return {"datagrams_received": s.received, "datagrams_refused": s.refused, "datagrams_sent": s.sent,
                "bytes_sent": self.bytes_sent, "refutations": s.refutations, "name_conflicts": s.name_conflicts,
                "syncs": s.syncs, "stalls_noticed": s.stalls_noticed, "local_health": self.core.health,
                "incarnations_refused": s.incarnations_refused, "candidates_verified": s.candidates_verified,
                "candidates_dropped": s.candidates_dropped, "candidates_pending": self.core.pending_candidates(),
                "clock_offset_exceeded": self.clock_trouble is not None,
                "datagrams_unopened": dict(self.unopened), "sealed": self.sealing.seals,
                "refused_by_cluster": self.refused_by_cluster}

    # -- join and leave ---------------------------------------------------------------------

    async def join(self, seeds: list[Address]) -> str:
        """Join the cluster of ``seeds``; answer once every member lists this node."""
        self._claim("join")
        self._left_behind.clear()
        try:
            if not self._in_cluster_of(seeds) and len(self.core.live_members()) > 1:
                await self._leave()
            # The seed's members are taken on once they answered this node's pings: this
            # node lists them all before it asks them to list it.
            known_to_seed = await self._sync_with_any(seeds)
            await self._until(lambda: self._everyone_lists_me(known_to_seed), "members still missing this node")
            await self.data_moved(self.others, lambda: self.ring.checksum, lambda: self.down)
            return f"joined a cluster of {len(self.peers())} members"
        finally:
            self._busy = None

    async def leave(self) -> str:
        """Leave cooperatively; answer once nobody lists this node and it stands alone."""
        self._claim("leave")
        try:
            if len(self.core.live_members()) <= 1:
                return "alone already"
            others = self.others()
            remaining = Ring([name for name in self.ring.members if name != self.name]).checksum
            await self.before_leave([m.name for m in others])
            await self._leave()
            await self.data_moved(lambda: others, lambda: remaining, frozenset)
            return "left the cluster; alone now"
        finally:
            self._busy = None

    async def remove(self, name: str) -> str:
        """Take a dead member off the ring for good (Cassandra's ``removenode``); answer
        once the others have re-replicated its data."""
        member = self.core.members.get(name)
        if member is None or member.state is State.LEFT:
            raise ClusterError(404, f"{name} is not a member")
        if member.state is not State.DEAD:
            raise ClusterError(409, f"{name} is {member.state.value}; only a dead member can be removed "
                                    "(a live one leaves with /dht/leave)")
        self._claim("remove")
        try:
            self.core.remove(self._reactor.seconds(), name)
            self._reschedule()
            await self.data_moved(self.others, lambda: self.ring.checksum, lambda: self.down)
            return f"removed {name}; its data is on the other members"
        finally:
            self._busy = None

    def others(self) -> list[Member]:
        """The live members other than this node."""
        return [m for m in self.core.live_members() if m.name != self.name]

    def rejoinable(self) -> list[Member]:
        """The members a restart of this node tries to rejoin: the others, dead ones too
        (one may be back first), but not those that left or are known by name only.
        The live come first: each dead one tried before them may cost a sync timeout."""
        others = [m for m in self.core.members.values() if m.name != self.name and m.state is not State.LEFT and m.host]
        return sorted(others, key=lambda m: m.state is State.DEAD)

    def _claim(self, what: str) -> None:
        if self._busy is not None:
            raise ClusterError(409, f"a {self._busy} is already in progress")
        self._busy = what

    def _in_cluster_of(self, seeds: list[Address]) -> bool:
        addresses = {m.api_address for m in self.core.live_members()}
        return any((seed.host, seed.port) in addresses for seed in seeds)

    async def _sync_with_any(self, seeds: list[Address]) -> set[str]:
        failures = []
        for seed in seeds:
            try:
                return await self.push_pull((seed.host, seed.port))
            except PeerError as e:
                if e.status in (403, 409):  # a wrong keyring or certificate, a name taken
                    self.log.error("{seed} refused this node: {error}", seed=seed, error=e)
                    raise ClusterError(e.status, f"refused by {e}") from None
                failures.append((seed, e))
            except WireError as e:
                failures.append((seed, PeerError(f"{seed} sent a bad member list: {e}")))
        timed_out = all(e.timed_out for _, e in failures)
        raise ClusterError(504 if timed_out else 502,
                           "could not reach any seed: " + "; ".join(str(e) for _, e in failures))

    async def _leave(self) -> None:
        others = self.others()
        old_incarnation = self.core.incarnation
        self.core.leave(self._reactor.seconds())
        self._reschedule()
        # Tell a few members directly; gossip carries it to the rest.
        for member in self._rng.sample(others, min(3, len(others))):
            try:
                await self.push_pull(member.api_address)
            except (PeerError, WireError):
                pass
        try:
            await self._until(lambda: self._nobody_lists_me(others), "members still listing this node")
        finally:  # alone either way: the leave was announced and gossip carries it on
            self._left_behind = {m.name for m in others}
            self.core = self._new_core(max(int(self._reactor.seconds()), old_incarnation + 2))
            self._reschedule()
            self._membership_changed()

    async def _until(self, condition, failure: str) -> None:
        deadline = self._reactor.seconds() + self._settle_seconds
        while True:
            missing = await condition()
            if not missing:
                return
            if self._reactor.seconds() >= deadline:
                raise ClusterError(504, f"timed out: {failure}: {', '.join(sorted(missing))}")
            await deferLater(self._reactor, POLL_SECONDS, lambda: None)

    async def _peer_lists(self, members: list[Member]) -> dict[str, Optional[set[str]]]:
        """Each member's ``/dht/peers``, asked all at once; None where it did not answer."""
        async def ask(member: Member) -> Optional[set[str]]:
            try:
                return set(await self._peers.peers(member.api_address, 1.0))
            except PeerError:
                return None
        answers = await gatherResults([ensureDeferred(ask(m)) for m in members])
        return {m.name: answer for m, answer in zip(members, answers)}

    async def _everyone_lists_me(self, expected: set[str]) -> list[str]:
        """Members that do not yet list this node, or list someone this node does not,
        and those of ``expected`` that this node does not list yet."""
        mine = set(self.peers())
        others = self.others()
        lists = await self._peer_lists(others)
        missing = [name for name, theirs in lists.items() if theirs is None or self.name not in theirs or not theirs <= mine]
        return missing + sorted(expected - mine)

    async def _nobody_lists_me(self, others: list[Member]) -> list[str]:
        lists = await self._peer_lists(others)  # one that does not answer cannot list anyone
        return [name for name, theirs in lists.items() if theirs is not None and self.name in theirs]
