"""SWIM membership with Lifeguard, as a pure state machine (sans-IO).

The machine never reads a clock, opens a socket or draws from global randomness: the
caller passes the time into every call, gives it a seeded ``random.Random``, hands it
each datagram that arrives, and sends what it returns.  ``next_deadline()`` says when
``tick`` must run next.  The same code therefore runs in a ``twistd`` node and, by the
thousand, in the deterministic simulator.

The rules follow HashiCorp memberlist: incarnation numbers order the claims about a
member, a member refutes a suspicion of itself with a higher incarnation, dead and
left members are only brought back by a higher incarnation, and updates are
piggybacked on probes and gossiped to a few random members a limited number of times.

No datagram, forged or not, is trusted further than it can be checked.  An update may
not raise a member's incarnation out of its reach to refute, and a member named in an
``Alive`` (new, or dead and moving elsewhere) joins the member list only once it answered
this node's ping from the address claimed for it: until then it is a candidate, one of a
bounded few.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Optional, Union

from gossipdht.membership.broadcasts import BroadcastQueue
from gossipdht.membership.candidates import Candidates
from gossipdht.membership.checksum import MemberChecksum
from gossipdht.membership.clockoffsets import ClockOffsets
from gossipdht.membership.lifeguard import LocalHealth, Suspicion
from gossipdht.membership.member import (
    LIVE,
    Datagram,
    Member,
    MemberEvent,
    Outgoing,
    State,
    Stats,
    StreamPing,
    SwimConfig,
    SyncRequest,
)
from gossipdht.membership.rotation import Rotation
from gossipdht.membership.wire import (
    Ack,
    Alive,
    Dead,
    Left,
    Message,
    Nack,
    Ping,
    PingReq,
    Suspect,
    WireError,
    datagram_overhead,
    pack_datagram,
    pack_message,
    unpack_datagram,
)

_PROBE_KINDS = (Ping, Ack, PingReq, Nack)

#: An update may raise a member's incarnation by at most this much.  Incarnations start
#: from the wall clock (in seconds), so a real jump is the time since the member's last
#: start: 2**32 s is 136 years.
MAX_INCARNATION_STEP = 2**32
#: A member not known yet may not arrive above this (2**40 s is the year 36,812), far below
#: the largest incarnation the wire carries (2**63 - 1): whoever is added can refute.
MAX_FIRST_INCARNATION = 2**40


def _wall_ms(now: float) -> int:
    return max(0, int(now * 1000))


@dataclass
class _Probe:
    seq: int
    target: str
    timeout_at: float
    end_at: float
    acked: bool = False
    direct: bool = False  # the target itself acked before the timeout
    indirect: bool = False  # the ping-req phase has begun
    helpers: int = 0
    responses: int = 0  # acks relayed and nacks, from helpers
    sent_at: float = 0.0


@dataclass
class _Relay:
    """A ping-req this node carries out for another member."""

    requester: tuple[str, int]
    seq: int
    nack_at: float
    expires_at: float
    nacked: bool = False


class Membership:
    """The SWIM state machine of one node: takes the time and datagrams, answers with datagrams and a deadline."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        api_port: int,
        now: float,
        rng: random.Random,
        config: SwimConfig = SwimConfig(),
        incarnation: int = 0,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.name = name
        self.config = config
        self.stats = Stats()
        self._rng = rng
        self._log = log
        self._me = Member(name, host, port, api_port, incarnation, State.ALIVE, now)
        self.members: dict[str, Member] = {name: self._me}
        self.listeners: list[Callable[[MemberEvent], None]] = []
        self._queue = BroadcastQueue()
        self._suspicions: dict[str, Suspicion] = {}
        self._health = LocalHealth(config.awareness_max)
        self.offsets = ClockOffsets()
        self._seq = 0
        self._probes: dict[int, _Probe] = {}  # by seq
        self._probe_order = Rotation(rng)
        self._relays: dict[int, _Relay] = {}
        self._candidates = Candidates()
        self._gossip_order = Rotation(rng)
        self._checksum = MemberChecksum()
        self._mismatch_since: Optional[float] = None
        self._last_mismatch_sync = -math.inf
        self._leaving = False
        self._next_probe = now + rng.uniform(0, config.probe_interval)
        self._next_gossip = now + rng.uniform(0, config.gossip_interval)
        self._next_push_pull = now + rng.uniform(0, config.push_pull_interval)  # staggered
        self._next_reap = now + config.reap_after
        self._now = now
        self._last_deadline = now
        self._overhead = datagram_overhead(name)
        self._checksum.touch(self._me)
        self._broadcast(self._describe(self._me))

    # -- queries ---------------------------------------------------------------------

    @property
    def incarnation(self) -> int:
        return self._me.incarnation

    @property
    def health(self) -> int:
        return self._health.score

    def pending_candidates(self) -> int:
        """Claimed members still waiting to answer this node's ping."""
        return len(self._candidates)

    def live_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.state in LIVE]

    def checksum(self) -> int:
        """Of the live members' names, addresses and incarnations: equal on converged nodes."""
        return self._checksum.value

    def next_deadline(self) -> float:
        deadlines = [self._next_push_pull, self._next_reap, self._next_probe]
        if len(self._queue):
            deadlines.append(self._next_gossip)
        # A probe is looked at when its direct wait ends; once it went indirect, it is
        # judged at the end of its window, after the helpers had their time to answer.
        deadlines.extend(p.end_at if p.indirect else p.timeout_at for p in self._probes.values())
        deadlines.extend(r.expires_at if r.nacked else r.nack_at for r in self._relays.values())
        deadlines.extend(s.deadline for s in self._suspicions.values())
        deadlines.extend(self._candidates.deadlines())
        # A deadline already past (gossip waiting for news) means "now", not a stall.
        self._last_deadline = max(self._now, min(deadlines))
        return self._last_deadline

    # -- input -------------------------------------------------------------------------

    def receive(self, now: float, source: tuple[str, int], data: bytes) -> list[Outgoing]:
        """Handle one datagram; garbage is counted in ``stats.refused`` and dropped."""
        try:
            sender, checksum, messages = unpack_datagram(data)
        except WireError:
            self.stats.refused += 1
            return []
        self._now = now
        self.stats.received += 1
        out: list[Outgoing] = []
        # News first, so that an ack already carries what it changed (a refutation, say).
        messages.sort(key=lambda m: type(m) in _PROBE_KINDS)
        for message in messages:
            self._handle(now, source, sender, message, out)
        self._compare_checksum(now, sender, checksum, out)
        return out

    def tick(self, now: float) -> list[Outgoing]:
        """Run whatever is due at ``now``."""
        self._now = now
        out: list[Outgoing] = []
        # Timers that fire far too late mean this process was stalled: its missing acks
        # may be waiting unread, so it gives them a moment before it accuses anyone.
        stalled = now - self._last_deadline > self.config.probe_timeout
        if stalled:
            self.stats.stalls_noticed += 1
            self._health.adjust(1)
        self._tick_probe(now, stalled, out)
        self._tick_relays(now, out)
        self._tick_candidates(now, out)
        self._tick_suspicions(now, stalled)
        if len(self._queue) and now >= self._next_gossip:  # idle for a round: news goes at once
            self._gossip(now, out)
            self._next_gossip = now + self.config.gossip_interval
        if now >= self._next_push_pull:
            self._next_push_pull = now + self._push_pull_interval() * self._rng.uniform(0.5, 1.5)
            target = self._random_members(1, include_dead=True)
            if target:
                out.append(SyncRequest(target[0].api_address))
        if now >= self._next_reap:
            self._reap(now)
        return out

    # -- full-state exchange (push/pull) ----------------------------------------------

    def local_state(self) -> list[Message]:
        """Every member as the update that describes it, for push/pull."""
        return [self._describe(m) for m in self.members.values()]

    def merge_state(self, now: float, remote: list[Message], converged: bool = False) -> None:
        """Apply a peer's full state.  A remote "dead" only makes us suspect: the member
        gets its chance to refute, as in memberlist.  A dead member this node never knew
        is taken as dead, known by name only until it comes back: it keeps its place on
        the ring meanwhile, on this node as on the others.  New members are candidates
        until they answer, as from gossip; a whole state may bring more of them than
        ``max_candidates``.  ``converged=True`` builds an already converged node (the
        simulator's starting point): its members are taken as they are and nothing is news."""
        self._now = now
        self.stats.syncs += 1
        self._mismatch_since = None
        room = None if converged else max(self.config.max_candidates, len(remote))
        for update in remote:
            if isinstance(update, Dead):
                if update.name not in self.members:
                    self._add_dead(now, update)
                    continue
                update = Suspect(update.name, update.incarnation, update.accuser)
            self._apply(now, update, room)
        if converged:
            self._queue.clear()

    def _add_dead(self, now: float, update: Dead) -> None:
        if not self._plausible(update):
            return
        member = Member(update.name, "", 0, 0, update.incarnation, State.DEAD, now)
        self.members[update.name] = member
        self._emit(member, None)

    def conflicts_with(self, update: Alive) -> Optional[Member]:
        """The live member that already holds ``update``'s name at another address."""
        current = self.members.get(update.name)
        if current is not None and current.state in LIVE and current.address != (update.host, update.port):
            return current
        return None

    def time_left(self, seq: int, now: float) -> float:
        """How long the probe ``seq`` still waits for an answer (0 when judged)."""
        probe = self._probes.get(seq)
        return 0.0 if probe is None else max(0.0, probe.end_at - now)

    # -- leaving -------------------------------------------------------------------------

    def leave(self, now: float) -> None:
        """Announce a graceful leave: state ``left`` with a higher incarnation."""
        self._leaving = True
        self._set_state(now, self._me, State.LEFT, self._me.incarnation + 1)
        self._broadcast(Left(self.name, self._me.incarnation))

    def remove(self, now: float, name: str) -> None:
        """An operator's word that a dead member is gone for good: it is marked left, as
        if it had left, and the news spreads.  Should it return, it refutes."""
        member = self.members[name]
        self._on_gone(now, Left(name, member.incarnation))

    # -- handling messages -----------------------------------------------------------------

    def _handle(self, now: float, source, sender: str, message: Message, out: list[Outgoing]) -> None:
        kind = type(message)
        if kind is Ping:
            if message.target == self.name:
                self._send(out, source, [pack_message(Ack(message.seq, _wall_ms(now)))])
            else:
                self.stats.refused += 1
        elif kind is Ack:
            self._on_ack(now, message, source, out)
        elif kind is Nack:
            probe = self._probes.get(message.seq)
            if probe is not None:
                probe.responses += 1
        elif kind is PingReq:
            # Only for a live member at its own address, and a bounded number at once: a
            # forged request must not make this node probe whoever the forger names.
            member = self.members.get(sender)
            if (member is None or member.state not in LIVE or member.address != source
                    or len(self._relays) >= self.config.max_relays):
                self.stats.refused += 1
                return
            seq = self._next_seq()
            self._relays[seq] = _Relay(source, message.seq, now + self.config.probe_timeout * 0.8,
                                       now + self.config.probe_window)
            self._send(out, (message.host, message.port), [pack_message(Ping(seq, message.target))])
        else:
            self._apply(now, message, self.config.max_candidates)

    def stream_ack(self, now: float, seq: int) -> None:
        """The member probed by ``StreamPing`` ``seq`` answered over TCP."""
        self._now = now
        probe = self._probes.get(seq)
        if probe is not None:
            probe.acked = True

    def _on_ack(self, now: float, ack: Ack, source, out: list[Outgoing]) -> None:
        seq = ack.seq
        probe = self._probes.get(seq)
        if probe is not None:
            target = self.members.get(probe.target)
            if target is not None and source == target.address and ack.wall_ms and not probe.acked:
                self.offsets.add(target.name, probe.sent_at, now, ack.wall_ms / 1000)
            if not probe.indirect:
                probe.direct = True
            elif target is None or source != target.address:
                probe.responses += 1  # relayed by a helper
            probe.acked = True
            return
        relay = self._relays.pop(seq, None)
        if relay is not None:
            self._send(out, relay.requester, [pack_message(Ack(relay.seq, _wall_ms(now)))])
            return
        verified = self._candidates.answered(seq, source)
        if verified is not None:
            self.stats.candidates_verified += 1
            self._apply(now, verified, None)

    def _apply(self, now: float, update: Message, room: Optional[int]) -> None:
        """``room``: how many unverified members may wait as candidates; None for an
        update that needs no check (a verified candidate, a converged state)."""
        if not self._plausible(update):
            return
        kind = type(update)
        if kind is Alive:
            self._on_alive(now, update, room)
        elif kind is Suspect:
            self._on_suspect(now, update)
        elif kind is Dead or kind is Left:
            self._on_gone(now, update)

    def _plausible(self, update: Message) -> bool:
        """Whether ``update``'s incarnation leaves its member the room to refute it."""
        known = self.members.get(update.name)
        limit = MAX_FIRST_INCARNATION if known is None else known.incarnation + MAX_INCARNATION_STEP
        if update.incarnation <= limit:
            return True
        self.stats.incarnations_refused += 1
        return False

    def _on_alive(self, now: float, update: Alive, room: Optional[int]) -> None:
        if update.name == self.name:
            if (update.host, update.port) != self._me.address:
                self._conflict(update, self._me)
            elif update.incarnation > self._me.incarnation:
                self._refute(update.incarnation)  # a claim from an earlier life of this node
            return
        current = self.members.get(update.name)
        if current is not None and update.incarnation <= current.incarnation:
            return
        if self.conflicts_with(update):
            self._conflict(update, current)
            return
        unverified = current is None or (current.state not in LIVE and current.address != (update.host, update.port))
        if unverified and room is not None:
            self._add_candidate(now, update, room)
            return
        if current is None:
            member = Member(update.name, update.host, update.port, update.api_port, update.incarnation,
                            State.ALIVE, now)
            self.members[update.name] = member
            self._probe_order.insert(member.name)
            self._broadcast(update)
            self._checksum.touch(member)
            self._emit(member, None)
            return
        current.host, current.port, current.api_port = update.host, update.port, update.api_port
        self._suspicions.pop(update.name, None)
        self._broadcast(update)
        self._set_state(now, current, State.ALIVE, update.incarnation)

    def _on_suspect(self, now: float, update: Suspect) -> None:
        current = self.members.get(update.name)
        if current is None or update.incarnation < current.incarnation:
            return
        if update.name == self.name:
            if not self._leaving:
                self._refute(update.incarnation)
            return
        if current.state is State.SUSPECT:
            suspicion = self._suspicions.get(update.name)
            if suspicion is not None and suspicion.confirm(update.accuser):
                self._broadcast(update)  # others count confirmations too
            return
        if current.state is not State.ALIVE:
            return
        self._suspicions[update.name] = self._new_suspicion(now, update.accuser)
        self._broadcast(update)
        self._set_state(now, current, State.SUSPECT, update.incarnation)

    def _on_gone(self, now: float, update: Union[Dead, Left]) -> None:
        current = self.members.get(update.name)
        if current is None or update.incarnation < current.incarnation:
            return
        new_state = State.LEFT if isinstance(update, Left) else State.DEAD
        if current.state is new_state or current.state is State.LEFT:
            return
        if update.name == self.name:
            if not self._leaving:
                self._refute(update.incarnation)
            return
        self._suspicions.pop(update.name, None)
        self._broadcast(update)
        self._set_state(now, current, new_state, update.incarnation)

    def _conflict(self, update: Alive, holder: Member) -> None:
        self.stats.name_conflicts += 1
        self._log(f"refused {update.name} at {update.host}:{update.port}: "
                  f"that name belongs to the live member at {holder.host}:{holder.port}")

    def _refute(self, incarnation: int) -> None:
        self.stats.refutations += 1
        self._health.adjust(1)
        self._me.incarnation = max(self._me.incarnation, incarnation) + 1
        self._checksum.touch(self._me)
        self._broadcast(self._describe(self._me))
        self._next_gossip = min(self._next_gossip, self._now)  # urgent: do not wait for the round

    # -- probing ---------------------------------------------------------------------------

    def _tick_probe(self, now: float, stalled: bool, out: list[Outgoing]) -> None:
        for probe in list(self._probes.values()):
            self._advance_probe(now, probe, stalled, out)
        if now >= self._next_probe:
            self._start_probe(now, out)

    def _advance_probe(self, now: float, probe: _Probe, stalled: bool, out: list[Outgoing]) -> None:
        if not probe.acked and not probe.indirect and now >= probe.timeout_at:
            target = self.members.get(probe.target)
            helpers = [m for m in self._random_members(self.config.indirect_checks + 1) if m.name != probe.target]
            helpers = helpers[: self.config.indirect_checks]
            if target is not None:
                request = pack_message(PingReq(probe.seq, target.name, target.host, target.port))
                for helper in helpers:
                    self._send(out, helper.address, [request])
                out.append(StreamPing(target.api_address, target.name, probe.seq))
            probe.indirect = True
            probe.helpers = len(helpers)
            if stalled:  # give a late ack a chance to be read before the probe is judged
                probe.end_at = max(probe.end_at, now + self.config.probe_timeout)
        if now >= probe.end_at or (probe.acked and not probe.indirect and now >= probe.timeout_at):
            self._judge_probe(now, probe, stalled)

    def _judge_probe(self, now: float, probe: _Probe, stalled: bool) -> None:
        if stalled and not probe.acked:
            probe.end_at = now + self.config.probe_timeout
            return
        del self._probes[probe.seq]
        # Lifeguard's evidence about this node itself.  A direct ack is good health.
        # Silence from every helper (no relayed ack, no nack) points at this node's own
        # network or load, even if the probe got through by TCP in the end; a single
        # missed nack does not, since loss on the way explains it.
        if probe.direct:
            self._health.adjust(-1)
        elif probe.helpers and not probe.responses:
            self._health.adjust(probe.helpers)
        elif not probe.helpers and not probe.acked:
            self._health.adjust(1)
        if probe.acked:
            return
        target = self.members.get(probe.target)
        if target is not None and target.state in LIVE:
            self._on_suspect(now, Suspect(target.name, target.incarnation, self.name))

    def _start_probe(self, now: float, out: list[Outgoing]) -> None:
        scale = self._health.scale
        self._next_probe = now + scale(self.config.probe_interval)
        target = self._next_probe_target()
        if target is None:
            return
        seq = self._next_seq()
        self._probes[seq] = _Probe(seq, target.name, now + scale(self.config.probe_timeout),
                                   now + scale(self.config.probe_window), sent_at=now)
        messages = [pack_message(Ping(seq, target.name))]
        if target.state is State.SUSPECT:
            # Lifeguard's buddy system: tell a suspect it is suspected, so that it can
            # refute at once, in its ack.
            messages.append(pack_message(Suspect(target.name, target.incarnation, self.name)))
        self._send(out, target.address, messages)

    def _next_probe_target(self) -> Optional[Member]:
        name = self._probe_order.next(lambda: (m.name for m in self._others() if m.state in LIVE),
                                      lambda n: n in self.members and self.members[n].state in LIVE)
        return None if name is None else self.members[name]

    def _add_candidate(self, now: float, update: Alive, room: int) -> None:
        """Wait for ``update``'s member to answer; once ``room`` wait, the oldest makes way."""
        if self._candidates.waiting(update):
            return
        # Unique and above every probe's seq (the counter), and not to be guessed by whoever
        # would forge the answer from the claimed address (the random part).
        nonce = self._next_seq() << 32 | self._rng.getrandbits(32)
        if self._candidates.add(update, nonce, now, now + self.config.verify_window, room):
            self.stats.candidates_dropped += 1

    def _tick_candidates(self, now: float, out: list[Outgoing]) -> None:
        expired, due = self._candidates.due(now)
        self.stats.candidates_dropped += expired
        for candidate in due:
            candidate.next_ping = now + self.config.probe_timeout  # as long as a probe waits for its ack
            update = candidate.update
            # Nothing piggybacked: the address may be anyone's, and our news is not for them.
            self._send(out, (update.host, update.port), [pack_message(Ping(candidate.nonce, update.name))],
                       piggyback=False)

    def _tick_relays(self, now: float, out: list[Outgoing]) -> None:
        for seq, relay in list(self._relays.items()):
            if now >= relay.expires_at:
                del self._relays[seq]
            elif not relay.nacked and now >= relay.nack_at:
                relay.nacked = True
                self._send(out, relay.requester, [pack_message(Nack(relay.seq))])

    # -- suspicion -----------------------------------------------------------------------

    def _new_suspicion(self, now: float, accuser: str) -> Suspicion:
        """Lifeguard's timeout: ``max`` shrinking to ``min`` after ``k`` confirmations.

        min = mult x max(2, log10 N) x probe interval: 3 s up to 100 members, 4.5 s at
        1,000.  A small cluster cannot wait for confirmations it cannot get (k = 0)."""
        n = self._checksum.live
        k = self.config.suspicion_confirmations
        if n - 2 < k:
            k = 0
        minimum = self.config.suspicion_mult * max(2.0, math.log10(max(n, 1)))
        return Suspicion(now, accuser, k, minimum, minimum * self.config.suspicion_max_mult)

    def _tick_suspicions(self, now: float, stalled: bool) -> None:
        for name, suspicion in list(self._suspicions.items()):
            if now < suspicion.deadline:
                continue
            if stalled:  # a refutation may be waiting unread
                suspicion.start += now + self.config.probe_timeout - suspicion.deadline
                continue
            member = self.members[name]
            self._on_gone(now, Dead(name, member.incarnation, self.name))

    # -- gossip --------------------------------------------------------------------------

    def _gossip(self, now: float, out: list[Outgoing]) -> None:
        if not len(self._queue):
            return
        for member in self._gossip_targets(now):
            updates = self._queue.take(self.config.max_datagram - self._overhead, self._retransmit_limit())
            if not updates:
                break
            self._send(out, member.address, updates, piggyback=False)

    def _gossip_targets(self, now: float) -> list[Member]:
        """Members for this round, in turn so that successive rounds reach distinct
        members; recently dead ones too, so they can refute."""
        targets: list[str] = []
        while len(targets) < self.config.gossip_fanout:
            name = self._gossip_order.next(
                lambda: (m.name for m in self._others()),
                lambda n: n not in targets and n in self.members and self._gossip_worthy(now, self.members[n]))
            if name is None:
                break
            targets.append(name)
        return [self.members[n] for n in targets]

    def _gossip_worthy(self, now: float, member: Member) -> bool:
        if member.state in LIVE:
            return True
        return member.state is State.DEAD and member.port != 0 and now - member.since < self.config.gossip_to_dead

    def _retransmit_limit(self) -> int:
        return self.config.retransmit_mult * math.ceil(math.log10(len(self.members) + 1))

    def _broadcast(self, update: Message) -> None:
        self._queue.push(update.name, update)

    def _send(self, out: list[Outgoing], address, messages: list[bytes], piggyback: bool = True) -> None:
        if piggyback:
            budget = self.config.max_datagram - self._overhead - sum(map(len, messages))
            messages = messages + self._queue.take(budget, self._retransmit_limit())
        data = pack_datagram(self.name, self.checksum(), messages)
        self.stats.sent += 1
        self.stats.bytes_sent += len(data)
        out.append(Datagram(address, data))

    # -- anti-entropy ----------------------------------------------------------------------

    def _compare_checksum(self, now: float, sender: str, checksum: int, out: list[Outgoing]) -> None:
        if checksum == self.checksum():
            self._mismatch_since = None
            return
        if self._mismatch_since is None:
            self._mismatch_since = now
            return
        member = self.members.get(sender)
        if (now - self._mismatch_since >= self.config.mismatch_grace
                and now - self._last_mismatch_sync >= self.config.mismatch_sync_interval
                and member is not None and member.state in LIVE):
            self._mismatch_since = None
            self._last_mismatch_sync = now
            out.append(SyncRequest(member.api_address))

    def _push_pull_interval(self) -> float:
        """memberlist's scaling: more members, rarer full syncs (same total load)."""
        n = len(self.members)
        scale = max(1, math.ceil(math.log2(n) - math.log2(32)) + 1) if n > 32 else 1
        return self.config.push_pull_interval * scale

    def _reap(self, now: float) -> None:
        self._next_reap = now + self.config.reap_after / 10
        for name, member in list(self.members.items()):
            if member.state not in LIVE and name != self.name and now - member.since >= self.config.reap_after:
                del self.members[name]
                self.offsets.forget(name)

    # -- helpers ---------------------------------------------------------------------------

    def _set_state(self, now: float, member: Member, state: State, incarnation: int) -> None:
        previous = member.state
        member.state = state
        member.incarnation = incarnation
        self._checksum.touch(member)
        if previous is not state:
            member.since = now
            self._emit(member, previous)

    def _emit(self, member: Member, previous: Optional[State]) -> None:
        for listener in self.listeners:
            listener(MemberEvent(member, previous))

    def _describe(self, member: Member) -> Message:
        if member.state is State.ALIVE:
            return Alive(member.name, member.incarnation, member.host, member.port, member.api_port)
        if member.state is State.SUSPECT:
            return Suspect(member.name, member.incarnation, self.name)
        if member.state is State.DEAD:
            return Dead(member.name, member.incarnation, self.name)
        return Left(member.name, member.incarnation)

    def _others(self) -> list[Member]:
        return [m for m in self.members.values() if m.name != self.name]

    def _random_members(self, count: int, include_dead: bool = False) -> list[Member]:
        states = (State.ALIVE, State.SUSPECT, State.DEAD) if include_dead else (State.ALIVE,)
        # A member known by name only (port 0) has no address to reach.
        candidates = [m for m in self._others() if m.state in states and m.port]
        return self._rng.sample(candidates, min(count, len(candidates)))

    def _next_seq(self) -> int:
        """1 to 2**31 - 1, round and round: a seq need only be unique among the probes,
        relays and candidates alive at once, and a candidate's nonce is one shifted up."""
        self._seq = self._seq % (2**31 - 1) + 1
        return self._seq
