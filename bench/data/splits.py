"""Seeded, stratified index splits.

Written with torch rather than sklearn's `train_test_split`: sklearn allocates per-class counts so that the
*total* hits round(N * fraction), which can leave a rare class with no validation sample; here every class gets
round(n_c * fraction) (at least 1 when it has >= 2 samples), which is what "stratified" promises per class.
Randomness is a float64 `torch.rand` draw from a CPU `torch.Generator` (Mersenne Twister, identical on every
machine) ordered by a stable sort, so the same seed gives the same indices everywhere.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _shuffled_per_class(labels: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """For each class c (0..max label), the positions of its samples in a seeded random order."""
    g = torch.Generator().manual_seed(seed)
    keys = torch.rand(len(labels), generator=g, dtype=torch.float64)
    order = torch.argsort(keys, stable=True)
    order = order[torch.argsort(labels[order], stable=True)]  # group by class, random within each class
    counts = torch.bincount(labels, minlength=int(labels.max()) + 1 if len(labels) else 0)
    return list(torch.split(order, counts.tolist()))


def _quota(n: int, fraction: float, available: int) -> int:
    k = math.floor(n * fraction + 0.5)  # round half up: Python's round() is half-to-even
    if fraction > 0 and n >= 2:
        k = max(k, 1)
    return min(k, available)


def stratified_split(labels: torch.Tensor, fractions: Sequence[float], seed: int) -> list[torch.Tensor]:
    """Split positions 0..N-1 into len(fractions) + 1 disjoint parts, each sorted.

    Part i takes, from every class, `fractions[i]` of that class's *whole* count (taken from what earlier parts
    left); the last part is the rest.
    """
    parts: list[list[torch.Tensor]] = [[] for _ in range(len(fractions) + 1)]
    for members in _shuffled_per_class(labels, seed):
        n, start = len(members), 0
        for i, fraction in enumerate(fractions):
            k = _quota(n, fraction, n - start)
            parts[i].append(members[start : start + k])
            start += k
        parts[-1].append(members[start:])
    return [torch.sort(torch.cat(p))[0] if p else torch.zeros(0, dtype=torch.int64) for p in parts]


def stratified_subsample(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Exactly min(n, N) sorted positions, each class represented in proportion (within one sample).

    Largest-remainder allocation, so the caller gets the size asked for.
    """
    if n >= len(labels):
        return torch.arange(len(labels))
    per_class = _shuffled_per_class(labels, seed)
    ideal = [len(m) * n / len(labels) for m in per_class]
    take = [math.floor(x) for x in ideal]
    by_remainder = sorted(range(len(ideal)), key=lambda c: (-(ideal[c] - take[c]), c))
    for c in by_remainder[: n - sum(take)]:
        take[c] += 1
    return torch.sort(torch.cat([m[:k] for m, k in zip(per_class, take, strict=True)]))[0]
