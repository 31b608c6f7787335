"""How much one message between nodes carries, and cutting sequences into such messages."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")

#: How many bytes of values one batch may carry (plus one value): a batch between nodes
#: or a bulk write (``POST /db``).
BATCH_BYTES = 8 << 20
#: Keys or records in one request between nodes.
BATCH_ITEMS = 1000


def batches(items: Iterable[T], size: Callable[[T], int], max_items: Optional[int] = BATCH_ITEMS,
            max_size: int = BATCH_BYTES) -> Iterator[list[T]]:
    """Consecutive slices of at most ``max_items`` items whose sizes add up to at most
    ``max_size``; an item larger than that travels alone."""
    batch: list[T] = []
    total = 0
    for item in items:
        weight = size(item)
        if batch and ((max_items is not None and len(batch) >= max_items) or total + weight > max_size):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += weight
    if batch:
        yield batch


def groups(items: Iterable[tuple[T, int]], at_least: int) -> Iterator[tuple[list[T], int]]:
    """Consecutive groups of ``(item, weight)`` closed once their weight reaches
    ``at_least`` (the last one may weigh less), each with its weight."""
    group: list[T] = []
    total = 0
    for item, weight in items:
        group.append(item)
        total += weight
        if total >= at_least:
            yield group, total
            group, total = [], 0
    if group:
        yield group, total
