"""Figures across seeds: mean, sample standard deviation and count, and ratios of means."""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Stat:
    mean: float
    sd: Optional[float]  # sample standard deviation (n - 1); None for one value
    n: int


def summarize(values: Iterable[Optional[float]]) -> Optional[Stat]:
    """Stat of the values that exist (None: not measured); None when none do."""
    present = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not present:
        return None
    return Stat(statistics.fmean(present), statistics.stdev(present) if len(present) > 1 else None, len(present))


def mean(stat: Optional[Stat]) -> Optional[float]:
    return stat.mean if stat is not None else None


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """a / b, None where either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def difference(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a - b if a is not None and b is not None else None
