"""Writes as clients saw them, and what became of them, counted as Jepsen counts them.

``Writers`` runs threads that each overwrite keys of their own, one write at a time,
with a value never written before, and record every write with its outcome: the HTTP
status, or the error when no answer came.  Since each key has one writer, the writes of
a key are ordered, and once the cluster is quiet a read of the key must return the last
acknowledged write or a later one.  ``outcome`` counts, over the whole history:

- attempted and acknowledged (204) writes;
- lost: acknowledged writes overwritten by nothing later that was read, that is, older
  than the value finally read, or the key is missing;
- unacknowledged but present: the value read is that of a write that failed or timed out
  (allowed: its replicas may have taken it before the answer was lost).
"""

from __future__ import annotations

import http.client
import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from clusterclient import Clients, path

#: After a write that got no answer, a writer waits this long before the next one.
PAUSE_AFTER_ERROR = 0.05


@dataclass
class Write:
    """One write as its client saw it."""

    key: str
    value: str
    status: object  # the HTTP status, or the name of the error when no answer came

    @property
    def acknowledged(self) -> bool:
        return self.status == 204


@dataclass
class Outcome:
    """Counts over a history of writes and the values finally read."""

    attempted: int = 0
    acknowledged: int = 0
    lost: list[Write] = field(default_factory=list)
    unacknowledged_present: int = 0
    statuses: Counter = field(default_factory=Counter)

    def line(self) -> str:
        return (f"{self.attempted} attempted, {self.acknowledged} acknowledged, {len(self.lost)} lost, "
                f"{self.unacknowledged_present} unacknowledged but present")

    @property
    def server_errors(self) -> dict:
        """Answers 5xx other than 503, which a node gives when too few replicas answer."""
        return {s: n for s, n in self.statuses.items() if isinstance(s, int) and s >= 500 and s != 503}


class Writers:
    """Threads that overwrite keys of their own one write at a time, through the nodes
    they are given in turn, recording every write."""

    def __init__(self, timeout: float = 5.0) -> None:
        self._clients = Clients(timeout)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.history: dict[str, list[Write]] = {}
        self._lock = threading.Lock()

    def add(self, nodes: Callable[[str], Sequence] | Sequence, keys: Sequence[str], query: str = "") -> None:
        """A writer of ``keys`` through ``nodes``, or through the nodes a function returns
        for the key.  Keys given to several writers are not ordered: ``outcome`` is only
        for keys of one writer each."""
        for key in keys:
            self.history.setdefault(key, [])
        pick = nodes if callable(nodes) else (lambda key: nodes)
        self._threads.append(threading.Thread(target=self._run, args=(pick, list(keys), query, len(self._threads)),
                                             daemon=True))

    def __enter__(self) -> "Writers":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def count(self) -> int:
        with self._lock:
            return sum(map(len, self.history.values()))

    def _run(self, nodes: Callable[[str], Sequence], keys: list[str], query: str, writer: int) -> None:
        for serial in itertools.count():
            if self._stop.is_set():
                return
            key = keys[serial % len(keys)]
            choices = nodes(key)
            node = choices[serial // len(keys) % len(choices)]
            value = f"{key}#{writer}.{serial}"
            try:
                status, _ = self._clients.request(node, "PUT", path(key, query), value.encode())
            except (OSError, http.client.HTTPException) as e:
                status = type(e).__name__
            with self._lock:
                self.history[key].append(Write(key, value, status))
            if status != 204:
                self._stop.wait(PAUSE_AFTER_ERROR)


def outcome(history: dict[str, list[Write]], final: dict[str, Optional[str]]) -> Outcome:
    """What became of each key's writes, given the value finally read (None: missing)."""
    result = Outcome()
    for key, writes in history.items():
        result.attempted += len(writes)
        result.statuses.update(w.status for w in writes)
        result.acknowledged += sum(w.acknowledged for w in writes)
        read = next((i for i, w in enumerate(writes) if w.value == final.get(key)), -1)
        result.lost += [w for w in writes[read + 1:] if w.acknowledged]
        if read >= 0 and not writes[read].acknowledged:
            result.unacknowledged_present += 1
    return result
