"""The coordinator answers the public API's reads and writes for any key.

The node that receives a request coordinates it, as in Dynamo: a write goes to the
key's N replicas at once and is acknowledged after W of them; a replica that fails is
replaced by the next node on the ring, which keeps the write as a hint for it (sloppy
quorum).  A read asks the N replicas and answers with the newest version among R
answers; replicas found stale are repaired in the background.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from gossipdht.hlc import HybridLogicalClock, Version
from gossipdht.replica import Replicas
from gossipdht.ring import Ring
from gossipdht.stats import DataStats
from gossipdht.storage import Record

TOMBSTONE_CONTENT_TYPE = ""


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
    def __init__(self, name: str, ring: Callable[[], Ring], replicas: Replicas, clock: HybridLogicalClock,
                 n: int, r: int, w: int, stats: DataStats) -> None:
        self.name = name
        self._ring = ring
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
        def answer(errors: dict[str, str]) -> Record:
            if errors:
                raise QuorumError(errors[key])
            return record

        return self._replicate([(key, record)], w).addCallback(answer)

    def _replicate(self, writes: list[tuple[str, Record]], w: Optional[int]) -> Deferred[dict[str, str]]:
        """Send each record to its key's N owners, one batch per node; fires once every
        key has W acknowledgements or can get no more, with the keys that fell short."""
        self.stats.writes_coordinated += len(writes)
        ring = self._ring()
        size = len(ring.members)
        n = min(self.n, size)
        needed = min(self.w, n) if w is None else w
        done: Deferred[dict[str, str]] = Deferred()
        if needed > n:
            return self._short(done, {key: f"w={needed} but the cluster holds only {n} replicas of a key"
                                      for key, _ in writes})
        orders = [ring.preference_list(key, n) for key, _ in writes]
        spares: dict[int, list[str]] = {}  # the nodes after the owners, for the keys that need them
        acks = [0] * len(writes)
        tally = {"pending": 0, "short": len(writes), "launched": False}

        def send(member: str, batch: list[int], hints: list[Optional[str]]) -> None:
            tally["pending"] += 1
            sent = [(writes[i][0], writes[i][1], hint) for i, hint in zip(batch, hints)]
            maybeDeferred(self._replicas[member].write, sent).addCallbacks(
                acknowledged, failed, callbackArgs=(batch,), errbackArgs=(batch, hints, member))

        def acknowledged(_, batch: list[int]) -> None:
            tally["pending"] -= 1
            for i in batch:
                acks[i] += 1
                if acks[i] == needed:
                    tally["short"] -= 1
            check()

        def failed(_: Failure, batch: list[int], hints: list[Optional[str]], member: str) -> None:
            tally["pending"] -= 1
            retries: dict[str, tuple[list[int], list[Optional[str]]]] = {}
            for i, hint in zip(batch, hints):
                if i not in spares:
                    spares[i] = ring.preference_list(writes[i][0], size)[n:]
                if spares[i]:  # sloppy quorum: the next node keeps it for the owner
                    retry = retries.setdefault(spares[i].pop(0), ([], []))
                    retry[0].append(i)
                    retry[1].append(hint or member)
            for fallback, (again, their_hints) in retries.items():
                send(fallback, again, their_hints)
            check()

        def check() -> None:
            if done.called or not tally["launched"]:
                return
            if tally["short"] == 0:
                done.callback({})
            elif tally["pending"] == 0:
                self._short(done, {key: f"only {acks[i]} of the {needed} replicas needed acknowledged the write"
                                   for i, (key, _) in enumerate(writes) if acks[i] < needed})

        batches: dict[str, list[int]] = {}
        for i, order in enumerate(orders):
            for member in order:
                batches.setdefault(member, []).append(i)
        for member, batch in batches.items():
            send(member, batch, [None] * len(batch))
        tally["launched"] = True
        check()
        return done

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

        R replicas are asked first, this node first when it is one; the others only when
        those fail, disagree or lack the key (Cassandra reads the same way)."""
        self.stats.reads_coordinated += 1
        targets = self._ring().preference_list(key, self.n)
        needed = min(self.r, len(targets)) if r is None else r
        done: Deferred[Optional[Record]] = Deferred()
        if needed > len(targets):
            return self._fail(done, f"r={needed} but the cluster holds only {len(targets)} replicas of a key")
        if self.name in targets:
            targets.remove(self.name)
            targets.insert(0, self.name)
        answers: dict[str, Optional[Record]] = {}
        failures: list[str] = []
        state = {"asked": 0, "launching": False}

        def ask(count: int) -> None:
            state["launching"] = True
            for member in targets[state["asked"] : state["asked"] + count]:
                state["asked"] += 1
                maybeDeferred(lambda: self._replicas[member].read_one(key)).addCallbacks(
                    answered, failed, callbackArgs=(member,), errbackArgs=(member,))
            state["launching"] = False
            decide()

        def decide() -> None:
            if state["launching"]:
                return
            if not done.called and len(answers) >= needed:
                versions = {None if a is None else a.version for a in answers.values()}
                # Answer early only when the answers agree on a found version: a replica
                # that lacks the key may be a new owner still receiving its data.
                if len(versions) == 1 and None not in versions:
                    done.callback(_live(newest(answers.values())))
            if len(answers) + len(failures) < state["asked"]:
                return  # answers still to come
            if not done.called and state["asked"] < len(targets):
                ask(len(targets))
                return
            self._repair(key, answers)
            if done.called:
                return
            if len(answers) >= needed:
                done.callback(_live(newest(answers.values())))
            else:
                self._fail(done, f"only {len(answers)} of the {needed} replicas needed answered the read")

        def answered(record: Optional[Record], member: str) -> None:
            answers[member] = record
            decide()

        def failed(_: Failure, member: str) -> None:
            failures.append(member)
            decide()

        ask(needed)
        return done

    def _repair(self, key: str, answers: dict[str, Optional[Record]]) -> None:
        """Read repair: bring the replicas that answered with an older version up to date."""
        record = newest(answers.values())
        if record is None:
            return
        for member, answer in answers.items():
            if answer is None or answer.version < record.version:
                self.stats.read_repairs += 1
                maybeDeferred(lambda: self._replicas[member].write([(key, record, None)])).addErrback(lambda _: None)

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
