"""Counters of the data layer, shown by ``GET /dht/stats``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DataStats:
    """Counters of the data layer, shown by ``GET /dht/stats``."""

    writes_coordinated: int = 0
    reads_coordinated: int = 0
    #: Of those, the ones this node coordinated without being one of the key's owners:
    #: each cost a hop that a client sending to an owner saves (``gossipdht.client``).
    writes_coordinated_as_non_owner: int = 0
    reads_coordinated_as_non_owner: int = 0
    quorum_failures: int = 0
    writes_refused_for_clock: int = 0
    writes_reissued: int = 0
    read_repairs: int = 0
    hints_stored: int = 0
    hints_delivered: int = 0
    anti_entropy_exchanges: int = 0
    anti_entropy_failures: int = 0
    keys_repaired: int = 0
    keys_handed_off: int = 0
    keys_dropped: int = 0
    tombstones_purged: int = 0
    rebalance_rounds: int = 0
