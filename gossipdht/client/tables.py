"""Aligned columns for a terminal, and the numbers in them."""

from __future__ import annotations

from typing import Optional, Sequence

#: What a cell shows for a value nobody could tell.
UNKNOWN = "-"


def table(header: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()) -> list[str]:
    """The header and rows as lines of columns two spaces apart; columns numbered in
    ``right`` (numbers) are aligned right, and no line ends in spaces."""
    cells = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    last = len(header) - 1
    return ["  ".join(cell.rjust(widths[i]) if i in right else (cell if i == last else cell.ljust(widths[i]))
                      for i, cell in enumerate(row)).rstrip() for row in cells]


def percent(fraction: Optional[float]) -> str:
    return UNKNOWN if fraction is None else f"{100 * fraction:.1f}%"


def count(number: Optional[int]) -> str:
    return UNKNOWN if number is None else f"{number:,}"


def duration(seconds: float) -> str:
    """``42s``, ``5m12s``, ``3h05m``, ``2d03h``: as precise as a glance needs."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"
