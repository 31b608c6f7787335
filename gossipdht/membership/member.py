"""The vocabulary of the membership core: members and their states, the core's
configuration and counters, and the actions it asks its caller to carry out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple, Optional, Union

from gossipdht.membership.wire import MAX_DATAGRAM


class State(str, Enum):
    """Where a member stands: alive, suspect, dead or left."""

    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"
    LEFT = "left"


LIVE = (State.ALIVE, State.SUSPECT)


@dataclass(frozen=True)
class SwimConfig:
    """Timing and fan-out; times in seconds.  See README.rst for how they were chosen."""

    probe_interval: float = 0.5  # a new probe starts this often...
    probe_timeout: float = 0.25  # ...waits this long for a direct ack, then asks helpers and TCP...
    probe_window: float = 1.0  # ...and is judged this long after it started (probes overlap)
    indirect_checks: int = 3
    gossip_interval: float = 0.2
    gossip_fanout: int = 3
    gossip_to_dead: float = 30.0
    retransmit_mult: int = 4
    suspicion_mult: float = 1.5  # min timeout: this many seconds x max(2, log10 N)
    suspicion_max_mult: float = 6.0
    suspicion_confirmations: int = 3
    awareness_max: int = 8
    push_pull_interval: float = 30.0
    mismatch_grace: float = 1.0
    mismatch_sync_interval: float = 10.0
    reap_after: float = 300.0
    max_datagram: int = MAX_DATAGRAM
    max_relays: int = 64  # ping-reqs carried out for others at once
    max_candidates: int = 64  # claims of new members waiting for their ping's answer...
    verify_window: float = 5.0  # ...each pinged at once and every probe timeout, this long


@dataclass
class Member:
    """What this node knows of a member: addresses, incarnation, state and since when."""

    name: str
    host: str
    port: int  # gossip (UDP)
    api_port: int  # HTTP (TCP)
    incarnation: int
    state: State
    since: float  # when the state last changed

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def api_address(self) -> tuple[str, int]:
        return (self.host, self.api_port)


class Datagram(NamedTuple):
    """Send ``data`` over UDP to ``address``."""

    address: tuple[str, int]
    data: bytes


class SyncRequest(NamedTuple):
    """Exchange full state (push/pull, over TCP) with the API at ``address``."""

    address: tuple[str, int]


class StreamPing(NamedTuple):
    """Ping ``target``'s API over TCP; call ``stream_ack(seq)`` if it answers in time.

    memberlist's fallback: a member that UDP loss hides is still reachable this way,
    which spares it a false suspicion."""

    address: tuple[str, int]
    target: str
    seq: int


Outgoing = Union[Datagram, SyncRequest, StreamPing]


class MemberEvent(NamedTuple):
    """A member whose state changed, with the state before."""

    member: Member
    previous: Optional[State]  # None for a member seen for the first time


@dataclass
class Stats:
    """Counters of the membership core: datagrams and bytes, refusals, refutations, syncs, stalls, verifications."""

    received: int = 0
    refused: int = 0
    sent: int = 0
    bytes_sent: int = 0
    refutations: int = 0
    name_conflicts: int = 0
    syncs: int = 0
    stalls_noticed: int = 0
    incarnations_refused: int = 0  # updates whose incarnation jumped beyond what a member can refute
    candidates_verified: int = 0  # claimed members that answered this node's ping from their address
    candidates_dropped: int = 0  # ...that did not in time, or were pushed out by newer claims
