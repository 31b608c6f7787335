"""The coordinator answers the public API's reads and writes for any key.

The node that receives a request coordinates it, as in Dynamo: a write goes to the
key's N replicas at once and is acknowledged after W of them; a replica that fails is
replaced by the next node on the ring, which keeps the write as a hint for it (sloppy
quorum); an owner that is down (dead, still on the ring within the rebalance delay)
is skipped at once.  A read asks the N replicas and answers with the newest version
among R answers; replicas found stale are repaired in the background.

A replica that already holds a newer version than the one written keeps its own and
says so.  Clocks disagree: that newer version may be from a write that finished before
this one began, on a node whose clock runs ahead.  The coordinator's clock observes it,
and the write goes again with a version above it, before it is acknowledged.  With
2W > N a write that finished reached W replicas, so a later one hears of it from at
least one before it can count W acknowledgements: an acknowledged overwrite is never
lost to an earlier write, whatever the clocks say.  The common case costs nothing more:
a replica answers as before when nothing beat the write.

While data moves to a new ring, a key may be on none of its new owners yet: a read
that finds it nowhere also asks the members that have not settled the ring (their
handoffs may still hold it), as Cassandra reads pending ranges.  If it finds the key
there neither, or some member settled meanwhile, it asks the owners once more: a member
drops a handed-off key only after the owners took it, so the key the members no longer
had reached the owners after they were first asked.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from gossipdht.core.hlc import HybridLogicalClock, Version
from gossipdht.core.ring import Ring
from gossipdht.data.replica import Replicas
from gossipdht.data.stats import DataStats
from gossipdht.storage import Record

TOMBSTONE_CONTENT_TYPE = ""
#: Times one write goes again above a newer version before it gives up (503): concurrent
#: writers of one key may overtake each other, but not for ever.
MAX_REISSUES = 3


class QuorumError(Exception):
    """Too few replicas answered: the API answers 503 with this message."""

    code = 503


def newest(records) -> Optional[Record]:
    """The newest of the records (None for a replica without the key): last writer wins."""
    found = [r for r in records if r is not None]
    return max(found, key=lambda r: r.version) if found else None


def _live(record: Optional[Record]) -> Optional[Record]:
    return None if record is None or record.deleted else record


class Coordinator:
    """Quorum reads and writes of a key across its replicas, with read repair, hints and reissues above newer versions."""

    def __init__(self, name: str, ring: Callable[[], Ring], replicas: Replicas, clock: HybridLogicalClock,
                 n: int, r: int, w: int, stats: DataStats,
                 down: Callable[[], frozenset[str]] = frozenset,
                 unsettled: Callable[[], list[str]] = list,
                 clock_trouble: Callable[[], Optional[str]] = lambda: None,
                 moves: Callable[[], object] = lambda: None,
                 isolated: Callable[[], Optional[str]] = lambda: None) -> None:
        self.name = name
        self._ring = ring
        #: Owners to skip, and the members whose handoffs may still hold a key.
        self._down = down
        self._unsettled = unsettled
        #: A token that changes whenever some member settles a ring.
        self._moves = moves
        #: Why this node's clock may not version writes now, or None.
        self._clock_trouble = clock_trouble
        #: Why this node serves no reads or writes now (its cluster refused it), or None.
        self._isolated = isolated
        self._replicas = replicas
        self._clock = clock
        self.n, self.r, self.w = n, r, w
        self.stats = stats
        clock.observe(replicas.local.store.max_timestamp())

    # -- writes --------------------------------------------------------------------------

    def put(self, key: str, value: bytes, content_type: str, w: Optional[int] = None) -> Deferred[Record]:
        return self._replicate_one(key, Record(self._next_version(), value, content_type), w)

    def put_many(self, items: dict[str, bytes], content_type: str,
                 w: Optional[int] = None) -> Deferred[dict[str, str]]:
        """Write every key as ``put`` does; the answer maps each key that failed to why."""
        return self._replicate([(key, Record(self._next_version(), value, content_type))
                                for key, value in items.items()], w)

    def delete(self, key: str, w: Optional[int] = None) -> Deferred[Record]:
        """Write a tombstone, so that replicas and repairs learn of the deletion."""
        return self._replicate_one(key, Record(self._next_version(), b"", TOMBSTONE_CONTENT_TYPE, deleted=True), w)

    def _next_version(self) -> Version:
        return Version(self._clock.now(), self.name)

    def _replicate_one(self, key: str, record: Record, w: Optional[int]) -> Deferred[Record]:
        writes = [(key, record)]

        def answer(errors: dict[str, str]) -> Record:
            if errors:
                raise QuorumError(errors[key])
            return writes[0][1]  # with the version it was written again with, if it was

        return self._replicate(writes, w).addCallback(answer)

    def _replicate(self, writes: list[tuple[str, Record]], w: Optional[int]) -> Deferred[dict[str, str]]:
        """Send each record to its key's N owners, one batch per node; fires once every
        key has W acknowledgements or can get no more, with the keys that fell short.
        A record written again above a newer version replaces its entry in ``writes``."""
        self.stats.writes_coordinated += len(writes)
        isolated = self._isolated()
        if isolated is not None:
            return self._short(Deferred(), {key: isolated for key, _ in writes})
        trouble = self._clock_trouble()
        if trouble is not None:  # its versions would be far off the others'
            self.stats.writes_refused_for_clock += len(writes)
            return self._short(Deferred(), {key: trouble for key, _ in writes})
        ring = self._ring()
        n = min(self.n, len(ring.members))
        needed = min(self.w, n) if w is None else w
        if needed > n:
            return self._short(Deferred(), {key: f"w={needed} but the cluster holds only {n} replicas of a key"
                                            for key, _ in writes})
        return _Write(self, ring, self._down(), writes, n, needed).start()

    def _short(self, done: Deferred, errors: dict[str, str]) -> Deferred:
        self.stats.quorum_failures += len(errors)
        done.callback(errors)
        return done

    def _fail(self, done: Deferred, message: str) -> Deferred:
        self.stats.quorum_failures += 1
        done.errback(QuorumError(message))
        return done

    # -- reads -----------------------------------------------------------------------------

    def get(self, key: str, r: Optional[int] = None) -> Deferred[Optional[Record]]:
        """The live record for ``key``, or None when it is missing or deleted.

        R replicas are asked first: this node when it is one, then those with the least
        wait to expect (``Replica.expected_wait``), so that one slow member does not slow
        the reads of the others (Cassandra's dynamic snitch steers reads so); the others
        only when those fail, disagree or lack the key (Cassandra reads the same way)."""
        self.stats.reads_coordinated += 1
        isolated = self._isolated()
        if isolated is not None:
            return self._fail(Deferred(), isolated)
        ring = self._ring()
        targets = ring.preference_list(key, self.n)
        needed = min(self.r, len(targets)) if r is None else r
        if needed > len(targets):
            return self._fail(Deferred(), f"r={needed} but the cluster holds only {len(targets)} replicas of a key")
        if self.name not in targets:
            self.stats.reads_coordinated_as_non_owner += 1
        down = self._down()
        # Sorted is stable: among members with the same wait, the ring's order.
        targets = sorted((member for member in targets if member not in down),
                         key=lambda member: (member != self.name, self._replicas[member].expected_wait()))
        return _Read(self, key, targets, needed, (ring, self._moves())).start()

    def _holders(self, key: str, asked: list[str]) -> list[str]:
        """Members that may hold a key its owners lack: those still moving data, and the
        owners on this node's ring now, if it changed while the read was on its way."""
        down = self._down()
        candidates = self._owners(key, down) + [member for member in self._unsettled() if member not in down]
        return [member for member in dict.fromkeys(candidates) if member not in asked]

    def _owners(self, key: str, down: Optional[frozenset[str]] = None) -> list[str]:
        """The owners of a key on this node's ring now, but those that are down."""
        down = self._down() if down is None else down
        return [member for member in self._ring().preference_list(key, self.n) if member not in down]

    def _moved(self, seen: tuple[Ring, object]) -> bool:
        """Whether the ring changed or some member settled one since ``seen``."""
        return self._ring() is not seen[0] or self._moves() != seen[1]

    def _repair(self, key: str, answers: dict[str, Optional[Record]], owners: list[str]) -> None:
        """Read repair: bring the owners that answered with an older version up to date."""
        record = newest(answers.values())
        if record is None:
            return
        for member in owners:
            answer = answers.get(member, record)
            if answer is None or answer.version < record.version:
                self.stats.read_repairs += 1
                maybeDeferred(lambda member=member: self._replicas[member].write([(key, record, None)])).addErrback(
                    lambda _: None)

    # -- listings ------------------------------------------------------------------------------

    def keys(self, after: Optional[str], limit: int, primary_only: bool) -> list[str]:
        """A page of the keys stored here, in order: all, or those this node is primary for.

        A page of primaries may hold fewer than ``limit`` keys; an empty page ends the listing."""
        store = self._replicas.local.store
        while True:
            page = store.keys(after, limit)
            if not primary_only or not page:
                return page
            ring = self._ring()
            mine = [key for key in page if ring.preference_list(key, 1) == [self.name]]
            if mine:
                return mine
            after = page[-1]


# A write or read in flight is an object rather than closures that call each other:
# closures referring to one another form reference cycles, and one cycle per request
# kept Python's cyclic garbage collector busy 40-180 ms every second or two under load.

class _Write:
    """One coordinated write of one or more keys: acknowledgements, retries on the
    next nodes of the ring (sloppy quorum), and writing again above a newer version."""

    def __init__(self, coordinator: Coordinator, ring: Ring, down: frozenset[str], writes: list[tuple[str, Record]],
                 n: int, needed: int) -> None:
        self.coordinator, self.ring, self.down, self.writes = coordinator, ring, down, writes
        self.n, self.needed = n, needed
        self.done: Deferred[dict[str, str]] = Deferred()
        self.acks = [0] * len(writes)
        #: How often each record went again; answers about an earlier version are ignored.
        self.generation = [0] * len(writes)
        self.overtaken: set[int] = set()
        self.spares: dict[int, list[str]] = {}  # the nodes after the owners, for the keys that need them
        self.pending = 0
        self.short = len(writes)
        self.launched = False

    def start(self) -> Deferred[dict[str, str]]:
        batches: dict[str, list[int]] = {}
        name, stats = self.coordinator.name, self.coordinator.stats
        for i, (key, _) in enumerate(self.writes):
            owners = self.ring.preference_list(key, self.n)
            if name not in owners:
                stats.writes_coordinated_as_non_owner += 1
            for member in owners:
                batches.setdefault(member, []).append(i)
        for member, batch in batches.items():
            self._launch(member, batch)
        self.launched = True
        self._check()
        return self.done

    def _launch(self, member: str, batch: list[int]) -> None:
        if member in self.down:
            self._redirect(member, batch, [None] * len(batch))
        else:
            self._send(member, batch, [None] * len(batch))

    def _send(self, member: str, batch: list[int], hints: list[Optional[str]]) -> None:
        self.pending += 1
        sent = [(self.writes[i][0], self.writes[i][1], hint) for i, hint in zip(batch, hints)]
        generations = [self.generation[i] for i in batch]
        maybeDeferred(self.coordinator._replicas[member].write, sent).addCallbacks(
            self._acknowledged, self._failed, callbackArgs=(batch, generations),
            errbackArgs=(batch, hints, member, generations))

    def _acknowledged(self, beaten: Optional[list[Optional[Version]]], batch: list[int],
                      generations: list[int]) -> None:
        self.pending -= 1
        for j, (i, generation) in enumerate(zip(batch, generations)):
            if generation != self.generation[i]:
                continue  # about a version written again since
            if beaten is not None and beaten[j] is not None:
                # Once W replicas took it the write stands (it is, or is about to be,
                # acknowledged), and once answered it is over: what beat it here is a
                # later write, which this one must not overwrite again.
                if self.acks[i] < self.needed and not self.done.called:
                    self._write_again(i, beaten[j])
                continue
            self.acks[i] += 1
            if self.acks[i] == self.needed:
                self.short -= 1
        self._check()

    def _write_again(self, i: int, newer: Version) -> None:
        """A replica holds a newer version than record ``i``: write it again above that."""
        if self.generation[i] >= MAX_REISSUES:
            self.overtaken.add(i)  # acknowledgements stay short: the write fails
            return
        coordinator = self.coordinator
        coordinator.stats.writes_reissued += 1
        coordinator._clock.observe(newer.timestamp)
        key, record = self.writes[i]
        self.writes[i] = (key, record._replace(version=coordinator._next_version()))
        self.generation[i] += 1
        self.acks[i] = 0
        self.spares.pop(i, None)
        launched, self.launched = self.launched, False  # no verdict before every owner is asked
        for member in self.ring.preference_list(key, self.n):
            self._launch(member, [i])
        self.launched = launched

    def _failed(self, _: Failure, batch: list[int], hints: list[Optional[str]], member: str,
                generations: list[int]) -> None:
        self.pending -= 1
        current = [(i, hint) for i, hint, generation in zip(batch, hints, generations) if generation == self.generation[i]]
        self._redirect(member, [i for i, _ in current], [hint for _, hint in current])

    def _redirect(self, member: str, batch: list[int], hints: list[Optional[str]]) -> None:
        """Send what ``member`` did not take to the next nodes of the ring, as hints."""
        retries: dict[str, tuple[list[int], list[Optional[str]]]] = {}
        for i, hint in zip(batch, hints):
            if i not in self.spares:
                self.spares[i] = [spare for spare in self.ring.preference_list(self.writes[i][0], len(self.ring.members))[self.n:]
                                  if spare not in self.down]
            if self.spares[i]:  # sloppy quorum: the next node keeps it for the owner
                retry = retries.setdefault(self.spares[i].pop(0), ([], []))
                retry[0].append(i)
                retry[1].append(hint or member)
        for fallback, (again, their_hints) in retries.items():
            self._send(fallback, again, their_hints)
        self._check()

    def _check(self) -> None:
        if self.done.called or not self.launched:
            return
        if self.short == 0:
            self.done.callback({})
        elif self.pending == 0:
            self.coordinator._short(self.done, {
                key: "newer writes of the key kept overtaking this one" if i in self.overtaken else
                f"only {self.acks[i]} of the {self.needed} replicas needed acknowledged the write"
                for i, (key, _) in enumerate(self.writes) if self.acks[i] < self.needed})


class _Read:
    """One coordinated read: R replicas first, the other owners when those do not settle
    it, and the members still moving data when no owner has the key."""

    def __init__(self, coordinator: Coordinator, key: str, targets: list[str], needed: int,
                 seen: tuple[Ring, object]) -> None:
        self.coordinator, self.key, self.targets, self.needed = coordinator, key, targets, needed
        self.owners = list(targets)
        #: The ring and the settlement token when the read began.
        self.seen = seen
        self.fallbacks = 0
        self.done: Deferred[Optional[Record]] = Deferred()
        self.answers: dict[str, Optional[Record]] = {}
        self.failures: list[str] = []
        #: Requests sent and answered or failed; the owners may be asked twice.
        self.asked = self.responded = 0
        self.launching = False

    def start(self) -> Deferred[Optional[Record]]:
        self._ask(self.needed)
        return self.done

    def _ask(self, count: int) -> None:
        self.launching = True
        for member in self.targets[self.asked : self.asked + count]:
            self.asked += 1
            maybeDeferred(self.coordinator._replicas[member].read_one, self.key).addCallbacks(
                self._answered, self._failed, callbackArgs=(member,), errbackArgs=(member,))
        self.launching = False
        self._decide()

    def _fallback(self) -> list[str]:
        """Whom to ask next when nobody asked has the key: first the members that may
        still hold it; then the owners once more, if those members were asked or some
        member settled meanwhile; then nobody."""
        self.fallbacks += 1
        coordinator = self.coordinator
        if self.fallbacks == 1:
            holders = coordinator._holders(self.key, self.targets)
            if holders:
                return holders
            self.fallbacks += 1
        if self.fallbacks == 2 and (len(self.targets) > len(self.owners) or coordinator._moved(self.seen)):
            return coordinator._owners(self.key)
        return []

    def _answered(self, record: Optional[Record], member: str) -> None:
        self.answers[member] = record
        self.responded += 1
        self._decide()

    def _failed(self, _: Failure, member: str) -> None:
        self.failures.append(member)
        self.responded += 1
        self._decide()

    def _decide(self) -> None:
        if self.launching:
            return
        done, answers = self.done, self.answers
        if not done.called and len(answers) >= self.needed:
            versions = {None if a is None else a.version for a in answers.values()}
            # Answer early only when the answers agree on a found version: a replica
            # that lacks the key may be a new owner still receiving its data.
            if len(versions) == 1 and None not in versions:
                done.callback(_live(newest(answers.values())))
        if self.responded < self.asked:
            return  # answers still to come
        if not done.called and self.asked < len(self.targets):
            self._ask(len(self.targets))
            return
        if not done.called and newest(answers.values()) is None:
            more = self._fallback()
            if more:
                self.targets += more
                self._ask(len(more))
                return
        self.coordinator._repair(self.key, answers, self.owners)
        if done.called:
            return
        answered = sum(owner in answers for owner in self.owners)
        if answered >= self.needed:
            done.callback(_live(newest(answers.values())))
        else:
            self.coordinator._fail(done, f"only {answered} of the {self.needed} replicas needed answered the read")
