"""The postal data the loader rows load: the shared Swedish postal codes beside the
checkout, or generated lines of the same shape when they are absent."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

#: The shared data set, ``../shared/data`` from the repository root; generated when absent.
DEFAULT_DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "se-postal-codes.tsv"
POSTAL_ROWS = 16_710

_STEMS = ("Sunds", "Öst", "Väst", "Norr", "Söder", "Lind", "Berg", "Ek", "Hol", "Stor", "Kungs", "Malm",
          "Ny", "Gran", "Björk", "Ål", "Sköv", "Hälle", "Tår", "Vik")
_ENDINGS = ("vall", "hammar", "köping", "berga", "torp", "sund", "by", "näs", "hus", "ås", "fors", "dal",
            "holm", "ö")
_QUALIFIERS = ("", "", "Norra ", "Södra ", "Lilla ", "Stora ")


def postal_lines(count: int = POSTAL_ROWS, seed: int = 1) -> list[str]:
    """Lines shaped like ``se-postal-codes.tsv``: a distinct 5-digit code, a tab and a
    Swedish-looking locality (UTF-8), each locality shared by about ten codes."""
    rng = random.Random(seed)
    places = sorted({rng.choice(_QUALIFIERS) + rng.choice(_STEMS) + rng.choice(_ENDINGS)
                     for _ in range(max(1, count // 10))})
    codes = rng.sample(range(10_000, 100_000), count)
    return [f"{code}\t{rng.choice(places)}" for code in codes]


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def prefixed_copy(source: Path, target: Path, prefix: str) -> Path:
    """A copy of a TSV file with ``prefix`` before every key, so that each round writes new keys."""
    lines = source.read_text(encoding="utf-8").splitlines()
    return write_lines(target, [prefix + line for line in lines if line])


def postal_data(data: Path, scratch: Path) -> Path:
    """The shared postal data set, or a generated file of the same shape when it is absent."""
    return data if data.is_file() else write_lines(scratch / "postal-generated.tsv", postal_lines())
