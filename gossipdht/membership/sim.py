"""Deterministic simulation of the gossip core: many nodes, one fake clock, a lossy network.

``python -m gossipdht.membership.sim join|crash|steady [options]`` runs the real ``Membership``
state machine for every node in one process.  Datagrams are delayed and dropped by a
seeded random network; push/pull exchanges travel as over TCP (delivered, but each leg
pays a 200 ms retransmission timeout per loss).  Stalled nodes process nothing for a
while: datagrams wait in their socket buffer and their timers fire late, timers first,
as in a starved Twisted reactor.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

from gossipdht.membership.member import Datagram, MemberEvent, State, StreamPing, SwimConfig, SyncRequest
from gossipdht.membership.swim import Membership
from gossipdht.membership.wire import pack_state

TCP_RETRANSMIT = 0.2

# Event kinds, in the order they run when due at the same instant.
_TICK, _DELIVER, _SYNC, _STREAM_PING, _STREAM_ACK, _STALL, _RESUME = range(7)


@dataclass
class SimNode:
    """One simulated node: its core, its address, and whether it runs or is stalled."""

    core: Membership
    address: tuple[str, int]
    running: bool = True
    stalled: bool = False
    buffered: list = field(default_factory=list)  # events that arrived while stalled
    tick_at: Optional[float] = None


@dataclass
class Results:
    """What a simulated scenario measured."""

    scenario: str
    nodes: int
    loss: float
    seed: int
    duration: float
    informed_at: Optional[dict] = None
    detection: Optional[list] = None
    false_positives: int = 0
    false_positives_after_warmup: int = 0
    msgs_per_node_per_s: float = 0.0
    bytes_per_node_per_s: float = 0.0
    syncs: int = 0
    refutations: int = 0
    runs: int = 1
    detection_summary: Optional[dict] = None
    wall_seconds: float = 0.0


class Simulation:
    """Many membership cores on one fake clock and a lossy fake network."""

    def __init__(
        self,
        nodes: int,
        seed: int = 1,
        loss: float = 0.0,
        latency: float = 0.001,
        config: SwimConfig = SwimConfig(),
        stall_fraction: float = 0.0,
        stall_seconds: float = 0.0,
        stall_every: float = 30.0,
    ) -> None:
        self.rng = random.Random(seed)
        self.loss = loss
        self.latency = latency
        self.config = config
        self.now = 0.0
        self._events: list = []
        self._order = 0
        self.nodes: dict[tuple[str, int], SimNode] = {}
        self.sync_bytes = 0
        self._side: dict[tuple[str, int], int] = {}  # address -> side of a partition
        self.dead_marks: dict[str, dict[str, float]] = {}  # member -> {marker: when}
        self.suspected_at: dict[str, float] = {}
        self.alive_known: dict[str, dict[str, float]] = {}  # member -> {knower: when}
        for i in range(nodes):
            self.add_node(f"node-{i:04d}")
        self._bootstrap()
        stallers = self.rng.sample(sorted(self.nodes), int(round(stall_fraction * nodes)))
        self._stall_seconds = stall_seconds
        self._stall_every = stall_every
        if stall_seconds > 0:
            for address in stallers:
                self._schedule(self.now + self.rng.expovariate(1 / stall_every), _STALL, address)

    # -- building ----------------------------------------------------------------------

    def add_node(self, name: str) -> SimNode:
        address = (f"10.0.{len(self.nodes) // 250}.{len(self.nodes) % 250 + 1}", 7946)
        core = Membership(name, *address, address[1], now=self.now, rng=random.Random(self.rng.random()),
                          config=self.config, incarnation=0)
        core.listeners.append(lambda event, knower=name: self._observe(knower, event))
        node = SimNode(core, address)
        self.nodes[address] = node
        self._reschedule(node)
        return node

    def _bootstrap(self) -> None:
        """Start converged: every node already knows every other, with nothing to tell."""
        state = [own_record(n.core) for n in self.nodes.values()]
        for node in self.nodes.values():
            node.core.merge_state(self.now, state, converged=True)
            self._reschedule(node)
        self.alive_known.clear()

    def _observe(self, knower: str, event: MemberEvent) -> None:
        member = event.member
        if member.state in (State.ALIVE, State.SUSPECT):
            self.alive_known.setdefault(member.name, {}).setdefault(knower, self.now)
        if member.state is State.SUSPECT:
            self.suspected_at.setdefault(member.name, self.now)
        if member.state is State.DEAD:
            self.dead_marks.setdefault(member.name, {}).setdefault(knower, self.now)

    # -- running -----------------------------------------------------------------------

    def run_until(self, end: float) -> None:
        events = self._events
        while events and events[0][0] <= end:
            when, _, kind, target, payload = heapq.heappop(events)
            self.now = when
            node = self.nodes.get(target)
            if node is None or not node.running:
                continue
            if kind == _STALL:
                self._stall(node)
            elif kind == _RESUME:
                self._resume(node)
            elif node.stalled:
                if kind != _TICK:
                    node.buffered.append((kind, payload))
            elif kind == _TICK:
                if node.tick_at == when:
                    node.tick_at = None
                    self._dispatch(node, node.core.tick(when))
            else:
                self._arrive(node, kind, payload)
        self.now = max(self.now, end)

    def _arrive(self, node: SimNode, kind: int, payload) -> None:
        if kind == _DELIVER:
            source, data = payload
            self._dispatch(node, node.core.receive(self.now, source, data))
        elif kind == _STREAM_PING:
            requester, target, seq = payload
            if target == node.core.name:
                self._tcp(node.address, requester, _STREAM_ACK, seq)
        elif kind == _STREAM_ACK:
            node.core.stream_ack(self.now, payload)
            self._reschedule(node)
        else:  # _SYNC: (requester address, its state, is_reply)
            requester, state, is_reply = payload
            node.core.merge_state(self.now, state)
            if not is_reply:
                reply = node.core.local_state()
                self.sync_bytes += state_size(reply)
                self._tcp(node.address, requester, _SYNC, (node.address, reply, True))
            self._reschedule(node)

    def _dispatch(self, node: SimNode, outgoing) -> None:
        for item in outgoing:
            if self._cut(node.address, item.address):
                continue
            if isinstance(item, Datagram):
                if self.rng.random() >= self.loss:
                    delay = self.latency * (0.5 + self.rng.random())
                    self._schedule(self.now + delay, _DELIVER, item.address, (node.address, item.data))
            elif isinstance(item, SyncRequest):
                state = node.core.local_state()
                self.sync_bytes += state_size(state)
                self._tcp(node.address, item.address, _SYNC, (node.address, state, False))
            elif isinstance(item, StreamPing):
                self._tcp(node.address, item.address, _STREAM_PING, (node.address, item.target, item.seq))
        self._reschedule(node)

    def _tcp(self, source, target, kind: int, payload) -> None:
        """Reliable, but each lost segment costs a retransmission timeout."""
        if self._cut(source, target):
            return
        delay = self.latency
        while self.rng.random() < self.loss:
            delay += TCP_RETRANSMIT
        self._schedule(self.now + delay, kind, target, payload)

    def _reschedule(self, node: SimNode) -> None:
        deadline = node.core.next_deadline()
        if node.tick_at != deadline:
            node.tick_at = deadline
            self._schedule(deadline, _TICK, node.address)

    def _schedule(self, when: float, kind: int, target, payload=None) -> None:
        if when < self.now:
            raise AssertionError(f"event scheduled in the past: {when} < {self.now}")
        self._order += 1
        heapq.heappush(self._events, (when, self._order, kind, target, payload))

    def _stall(self, node: SimNode) -> None:
        node.stalled = True
        self._schedule(self.now + self._stall_seconds, _RESUME, node.address)

    def _resume(self, node: SimNode) -> None:
        node.stalled = False
        if node.tick_at is not None and node.tick_at <= self.now:  # late timers run first
            node.tick_at = None
            self._dispatch(node, node.core.tick(self.now))
        buffered, node.buffered = node.buffered, []
        for kind, payload in buffered:
            self._arrive(node, kind, payload)
        self._reschedule(node)
        self._schedule(self.now + self.rng.expovariate(1 / self._stall_every), _STALL, node.address)

    # -- scenarios ---------------------------------------------------------------------

    def join(self, name: str) -> SimNode:
        """A new node joins through a random live seed (push/pull, as over TCP)."""
        seed = self.rng.choice(sorted(a for a, n in self.nodes.items() if n.running))
        node = self.add_node(name)
        self._dispatch(node, [SyncRequest(seed)])
        return node

    def partition(self, names: set[str]) -> None:
        """Cut the named nodes off from all the others (both ways) until ``heal()``."""
        self._side = {a: int(n.core.name in names) for a, n in self.nodes.items()}

    def heal(self) -> None:
        self._side = {}

    def _cut(self, source, target) -> bool:
        return bool(self._side) and self._side.get(source, 0) != self._side.get(target, 0)

    def restart(self, name: str) -> SimNode:
        """Bring a crashed node back as a fresh process (incarnation 0) that rejoins."""
        del self.nodes[next(a for a, n in self.nodes.items() if n.core.name == name)]
        return self.join(name)

    def crash(self, count: int) -> list[str]:
        victims = self.rng.sample(sorted(self.nodes), count)
        for address in victims:
            self.nodes[address].running = False
        return [self.nodes[a].core.name for a in victims]

    def live_names(self) -> set[str]:
        return {n.core.name for n in self.nodes.values() if n.running}

    def totals(self) -> tuple[int, int, int, int]:
        """Datagrams, bytes (push/pull included), syncs and refutations so far, all nodes."""
        stats = [n.core.stats for n in self.nodes.values()]
        return (sum(s.sent for s in stats), sum(s.bytes_sent for s in stats) + self.sync_bytes,
                sum(s.syncs for s in stats), sum(s.refutations for s in stats))

    def false_positives(self, healthy: set[str], since: float = 0.0) -> int:
        """Healthy nodes that some node marked dead (at or after ``since``)."""
        return sum(1 for name in healthy if any(t >= since for t in self.dead_marks.get(name, {}).values()))


def own_record(core: Membership):
    """A node's own record, as it would describe itself."""
    return core.local_state()[0]


def state_size(state) -> int:
    return len(pack_state("node", state))


def percentile_times(times: list[float], total: int, start: float) -> dict:
    ordered = sorted(t - start for t in times)
    result = {}
    for label in ("50", "99", "99.99", "100"):
        needed = math.ceil(float(label) / 100 * total)
        result[label] = round(ordered[needed - 1], 3) if len(ordered) >= needed else None
    return result


def run(args: argparse.Namespace) -> Results:
    started = time.perf_counter()
    sim = Simulation(args.nodes, seed=args.seed, loss=args.loss, latency=args.latency,
                     stall_fraction=args.stall_fraction, stall_seconds=args.stall_seconds,
                     stall_every=args.stall_every)
    warmup = args.warmup
    sim.run_until(warmup)
    base = sim.totals()
    results = Results(args.scenario, args.nodes, args.loss, args.seed, args.duration)
    healthy = sim.live_names()
    if args.scenario == "join":
        existing = sim.live_names()
        newcomer = sim.join("newcomer")
        sim.run_until(warmup + args.duration)
        known = sim.alive_known.get(newcomer.core.name, {})
        times = [when for knower, when in known.items() if knower in existing]
        results.informed_at = percentile_times(times, len(existing), warmup)
    elif args.scenario == "crash":
        victims = sim.crash(args.crash)
        healthy -= set(victims)
        sim.run_until(warmup + args.duration)
        results.detection = []
        for victim in victims:
            marks = sim.dead_marks.get(victim, {})
            everyone = [marks.get(name) for name in healthy]
            first = sim.suspected_at.get(victim)
            results.detection.append({
                "node": victim,
                "first_suspect": None if first is None or first < warmup else round(first - warmup, 3),
                "all_dead": None if None in everyone else round(max(everyone) - warmup, 3),
            })
    else:
        sim.run_until(warmup + args.duration)
    results.false_positives = sim.false_positives(healthy)
    results.false_positives_after_warmup = sim.false_positives(healthy, since=warmup)
    sent, sent_bytes, syncs, refutations = (now - then for now, then in zip(sim.totals(), base))
    node_seconds = args.duration * len(sim.nodes)
    results.msgs_per_node_per_s = round(sent / node_seconds, 2)
    results.bytes_per_node_per_s = round(sent_bytes / node_seconds, 1)
    results.syncs, results.refutations = syncs, refutations
    results.wall_seconds = round(time.perf_counter() - started, 2)
    return results


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gossipdht.membership.sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["join", "crash", "steady"])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--loss", type=float, default=0.0, help="fraction of datagrams dropped")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=None,
                        help="simulated seconds after the event (default: join 10, crash 30, steady 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="simulated seconds before the event")
    parser.add_argument("--crash", type=int, default=1, help="nodes killed at once (crash)")
    parser.add_argument("--latency", type=float, default=0.001, help="mean one-way delay, seconds")
    parser.add_argument("--stall-fraction", type=float, default=0.0)
    parser.add_argument("--stall-seconds", type=float, default=0.0)
    parser.add_argument("--stall-every", type=float, default=30.0,
                        help="mean seconds between the stalls of a stalling node")
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat with seeds SEED.. SEED+RUNS-1 and combine (worst percentiles, all detections)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = {"join": 10.0, "crash": 30.0, "steady": 60.0}[args.scenario]
    if not 0 <= args.loss < 1 or args.nodes < 2 or not 0 <= args.stall_fraction <= 1:
        parser.error("need --nodes >= 2, 0 <= --loss < 1, 0 <= --stall-fraction <= 1")
    if args.scenario == "crash" and not 1 <= args.crash < args.nodes:
        parser.error("--crash must be between 1 and nodes - 1")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def combine(runs: list[Results]) -> Results:
    """Several seeds as one result: the worst join percentiles, every detection, summed
    false positives, mean traffic."""
    total = runs[0]
    for other in runs[1:]:
        if total.informed_at is not None:
            total.informed_at = {
                k: None if v is None or other.informed_at[k] is None else max(v, other.informed_at[k])
                for k, v in total.informed_at.items()
            }
        if total.detection is not None:
            total.detection = total.detection + other.detection
        total.false_positives += other.false_positives
        total.false_positives_after_warmup += other.false_positives_after_warmup
        total.syncs += other.syncs
        total.refutations += other.refutations
        total.wall_seconds = round(total.wall_seconds + other.wall_seconds, 2)
    total.msgs_per_node_per_s = round(sum(r.msgs_per_node_per_s for r in runs) / len(runs), 2)
    total.bytes_per_node_per_s = round(sum(r.bytes_per_node_per_s for r in runs) / len(runs), 1)
    total.runs = len(runs)
    if total.detection is not None:
        dead = [d["all_dead"] for d in total.detection]
        seen = sorted(t for t in dead if t is not None)
        total.detection_summary = {
            "crashes": len(dead), "undetected": dead.count(None),
            "median_all_dead": statistics.median(seen) if seen else None,
            "max_all_dead": seen[-1] if seen else None,
        }
    return total


def main(argv: Optional[list[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runs = []
    for seed in range(args.seed, args.seed + args.runs):
        args.seed = seed
        runs.append(run(args))
    data = vars(combine(runs))
    if args.json:
        print(json.dumps(data))
    else:
        for key, value in data.items():
            print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
