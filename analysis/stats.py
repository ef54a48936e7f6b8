"""Figures across seeds: mean, sample standard deviation and count, ratios of means, and paired differences
between two setups that share seeds."""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
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


@dataclass(frozen=True)
class Paired:
    """a − b over the seeds both have (the same seed: the same split and the same batches): the mean difference,
    its sample sd and a two-sided 95% Student-t interval (None below 2 pairs)."""
    mean: float
    sd: Optional[float]
    n: int
    low: Optional[float]
    high: Optional[float]


def paired_difference(a: Mapping[int, Optional[float]], b: Mapping[int, Optional[float]]) -> Optional[Paired]:
    """Per seed a[seed] − b[seed] where both were measured; None when no seed has both."""
    from scipy.stats import t  # here: scipy.stats takes a while to import and only paired columns need it

    diffs = [float(a[s]) - float(b[s]) for s in sorted(a.keys() & b.keys()) if a[s] is not None and b[s] is not None]
    if not diffs:
        return None
    centre = statistics.fmean(diffs)
    if len(diffs) < 2:
        return Paired(centre, None, 1, None, None)
    sd = statistics.stdev(diffs)
    half = float(t.ppf(0.975, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
    return Paired(centre, sd, len(diffs), centre - half, centre + half)
