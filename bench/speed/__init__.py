"""`reprogbench bench`: each fast path measured side by side with the naive path it replaces, in one run.

A measurement is a function `(Settings) -> Measurement`; `report` prints them and appends to BENCHMARKS.md.
Ratios, not absolute times, are the point: both paths run in the same process, one after the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch


@dataclass(frozen=True)
class Settings:
    device: torch.device
    quick: bool  # fewer steps / smaller sets: the whole `bench --quick` fits in a few minutes on 2 CPU cores
    workdir: str  # scratch folder for grids and results the measurement writes


@dataclass
class Measurement:
    name: str  # e.g. "ar step: frozen vs naive backbone"
    rows: list[dict]  # one row per variant, e.g. {"variant": "frozen", "images/s": 812.0, ...}
    ratio: Optional[float]  # the headline: fast / naive (higher is better), None if it could not be measured
    ratio_label: str  # what the ratio divides, e.g. "images/s frozen / naive"
    target: str = ""  # the target, e.g. ">= 1.5x on CPU"; "" when there is none
    notes: list[str] = field(default_factory=list)  # what was measured and how, in a line each
