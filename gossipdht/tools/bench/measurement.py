"""One run of one operation (``Measurement``, read from wrk's ``BENCH`` line or the loader's
last line) and one row over all rounds (``Row``, ``aggregate``: medians, errors summed)."""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence, Union

#: A row with more failed requests than this share is flagged.
ERROR_LIMIT = 0.01
BENCH_LINE = "BENCH "
LOADER_LINE = re.compile(r"(\d+) keys in ([\d.]+) s")
LOADER_FAILED = re.compile(r"(\d+) not stored")
#: A load generator that uses more of a core than this may be what limits the rate.
GENERATOR_LIMIT = 0.80


class Unavailable(Exception):
    """An operation could not be measured in a round; the message says why."""


@dataclass(frozen=True)
class Measurement:
    """One run of one operation.  ``errors`` includes ``status_errors`` (status 400 or more);
    ``generator_cpu`` is the load generator's CPU time over its run (1.0: one core busy);
    ``via`` says which member of the system the run drove, where that needs saying;
    ``system_cpu_us`` is the CPU the measured system's processes spent a request, where
    ``warmed`` was given their pids."""

    requests: int
    seconds: float
    errors: int = 0
    status_errors: int = 0
    p50_ms: Optional[float] = None
    p99_ms: Optional[float] = None
    generator_cpu: Optional[float] = None
    via: str = ""
    system_cpu_us: Optional[float] = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Row:
    """One operation over all rounds: medians of the rounds, errors summed, and each
    measured round's rate (``rates``)."""

    operation: str
    rate: Optional[float]
    p50_ms: Optional[float]
    p99_ms: Optional[float]
    requests: int
    errors: int
    status_errors: int
    note: str = ""
    generator_cpu: Optional[float] = None
    via: str = ""
    rates: tuple[float, ...] = ()
    system_cpu_us: Optional[float] = None

    @property
    def error_share(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def flagged(self) -> bool:
        return self.error_share > ERROR_LIMIT


def generator_flagged(share: Optional[float]) -> bool:
    return share is not None and share > GENERATOR_LIMIT


def parse_wrk(output: str) -> Measurement:
    """The measurement in the ``BENCH {json}`` line that ``report.lua`` prints."""
    for line in output.splitlines():
        if line.startswith(BENCH_LINE):
            data = json.loads(line[len(BENCH_LINE):])
            return Measurement(
                requests=int(data["requests"]), seconds=float(data["seconds"]),
                errors=int(data["errors"]), status_errors=int(data["status_errors"]),
                p50_ms=float(data["p50_ms"]), p99_ms=float(data["p99_ms"]),
            )
    raise ValueError("no BENCH line in the output of wrk")


def parse_loader(output: str) -> Measurement:
    """Keys and seconds from the loader's last line, ``16710 keys in 0.52 s: 32,135 keys/s``,
    which ends in ``, 3 not stored`` when some keys failed.  As in wrk's count, the
    failed keys are requests too, and errors."""
    lines = output.strip().splitlines()
    match = LOADER_LINE.search(lines[-1]) if lines else None
    if match is None:
        raise ValueError("the loader's last line does not say 'N keys in S s'")
    failed = LOADER_FAILED.search(lines[-1])
    errors = int(failed.group(1)) if failed else 0
    return Measurement(requests=int(match.group(1)) + errors, seconds=float(match.group(2)), errors=errors)


def _median(values: Sequence[Optional[float]]) -> Optional[float]:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _vias(measured: Sequence[Measurement]) -> str:
    """The one ``via`` of every round, or each with the rounds it held in."""
    vias = [m.via for m in measured]
    if len(set(vias)) == 1:
        return vias[0]
    return ", ".join(f"{via} in {vias.count(via)} of {len(vias)} rounds" for via in dict.fromkeys(vias) if via)


def aggregate(operation: str, results: Sequence[Union[Measurement, Unavailable]]) -> Row:
    """Each metric's median over the rounds that measured it; rounds that could not are noted."""
    measured = [r for r in results if isinstance(r, Measurement)]
    missing = [str(r) for r in results if isinstance(r, Unavailable)]
    note = ""
    if missing:
        note = f"n/a in {len(missing)} of {len(results)} rounds: {missing[-1]}" if measured else f"n/a: {missing[-1]}"
    return Row(
        operation=operation,
        rate=_median([m.rate for m in measured]),
        p50_ms=_median([m.p50_ms for m in measured]),
        p99_ms=_median([m.p99_ms for m in measured]),
        requests=sum(m.requests for m in measured),
        errors=sum(m.errors for m in measured),
        status_errors=sum(m.status_errors for m in measured),
        note=note,
        generator_cpu=_median([m.generator_cpu for m in measured]),
        via=_vias(measured),
        rates=tuple(m.rate for m in measured),
        system_cpu_us=_median([m.system_cpu_us for m in measured]),
    )
