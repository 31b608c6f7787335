"""``--check ROW``: does pausing the other systems measure a row as if it ran alone?

The row is measured first with nothing but its own system started, then in the full run
(every system started, the others paused while it is measured), and the two medians are
compared with the run-to-run noise: the wider spread of the two runs' rounds (highest
rate less lowest, over the median).  They agree when they differ by no more than that.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable, Optional, Sequence

from gossipdht.tools.bench import Settings, format_table, run


def spread(rates: Sequence[float]) -> Optional[float]:
    """The rounds' highest rate less their lowest, over their median; None under two rounds."""
    if len(rates) < 2:
        return None
    return (max(rates) - min(rates)) / statistics.median(rates)


def verdict(alone: Sequence[float], full: Sequence[float]) -> dict:
    """The two medians, the full run's difference to the alone one (a share of it), the
    noise (the wider spread), and whether the difference is within it (None: cannot tell,
    a run without two measured rounds)."""
    if not alone or not full:
        return {"alone": None, "full": None, "difference": None, "noise": None, "agree": None}
    spreads = [spread(alone), spread(full)]
    noise = None if None in spreads else max(spreads)
    difference = statistics.median(full) / statistics.median(alone) - 1
    return {"alone": statistics.median(alone), "full": statistics.median(full), "difference": difference,
            "noise": noise, "agree": None if noise is None else abs(difference) <= noise}


def _rates(report: dict, row: str) -> list[float]:
    return next(list(r["rates"]) for r in report["rows"] if r["operation"] == row)


def run_check(settings: Settings, scratch: Path, row: str, progress: Callable[[str], None]) -> dict:
    """``row`` alone, then the full run, each in a directory of its own under ``scratch``; the report."""
    directories = {phase: scratch / phase for phase in ("alone", "full")}
    for directory in directories.values():
        directory.mkdir(parents=True)
    progress(f"check: {row}, only its system started")
    alone = run(settings, directories["alone"], progress, only=row)
    progress(f"check: the full run, {row} among the other rows")
    full = run(settings, directories["full"], progress)
    return {"row": row, "alone": alone, "full": full, "verdict": verdict(_rates(alone, row), _rates(full, row))}


def _rounds(rates: Sequence[float]) -> str:
    return f"rounds {min(rates):,.0f}-{max(rates):,.0f}" if len(rates) > 1 else "1 round"


def format_check(report: dict) -> str:
    """The full run's table, then the row alone against the same row in it, and the verdict."""
    row, result = report["row"], report["verdict"]
    lines = [format_table(report["full"]), ""]
    if result["alone"] is None:
        return "\n".join([*lines, f"check {row}: cannot tell, a run did not measure the row"])
    alone, full = _rates(report["alone"], row), _rates(report["full"], row)
    lines.append(f"check {row}: alone {result['alone']:,.0f} req/s ({_rounds(alone)}), "
                 f"in the full run {result['full']:,.0f} req/s ({_rounds(full)})")
    if result["noise"] is None:
        lines.append(f"  difference {result['difference']:+.1%}; cannot tell without the spread of two rounds or more "
                     "(--rounds 3)")
    else:
        lines.append(f"  difference {result['difference']:+.1%}, noise {result['noise']:.1%} (the wider spread of the "
                     f"rounds: highest less lowest, over the median): "
                     f"{'agree' if result['agree'] else 'DISAGREE'}")
    return "\n".join(lines)
