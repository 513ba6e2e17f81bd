"""What every part's report shares: a target's check, a ratio, a plain-text table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TargetCheck:
    """One ratio from the issue's targets, measured."""

    target: str
    ratio: float | None
    limit: float
    at_least: bool
    """True when the ratio must be at least ``limit``; False when at most."""
    never_beyond: float | None = None
    """A bound the ratio must never pass even where it misses ``limit`` (e.g. CPU: 1.3, never 1.5)."""

    @property
    def passed(self) -> bool | None:
        if self.ratio is None:
            return None
        return self.ratio >= self.limit if self.at_least else self.ratio <= self.limit

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "n/a"
        if self.passed:
            return "pass"
        if self.never_beyond is not None and self.ratio is not None and self.ratio > self.never_beyond:
            return f"MISS (past {self.never_beyond:g})"
        return "MISS"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        cell.rjust(width) if i else cell.ljust(width)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return [_row(header, widths), _row(["-" * w for w in widths], widths), *(_row(r, widths) for r in rows)]
