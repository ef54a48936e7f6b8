"""Checks before any cell runs: every dataset and weights file the cells need is on this machine, or one error
(exit 2, nothing written) that lists all that is missing and the `prepare` command that fetches it, instead of
the same failure recorded in every cell that needs it, one missing file per rerun."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bench.data import dataset_available
from bench.data.roots import resolve_root
from bench.grid import IMAGENET, Cell
from bench.models.checksums import WeightsCorrupt
from bench.models.weights import verify_weights, weights_present


@dataclass(frozen=True)
class Inputs:
    """What a set of cells reads from disk: dataset names and backbones whose ImageNet weights they load."""

    datasets: tuple[str, ...]
    weights: tuple[str, ...]

    @classmethod
    def of(cls, cells: list[Cell]) -> Inputs:
        datasets = sorted({c.task for c in cells})  # a pretrain cell's task is its original dataset
        weights = sorted({c.backbone for c in cells if (c.spec["original"] or {}).get("trained_on") == IMAGENET})
        return cls(tuple(datasets), tuple(weights))

    def missing(self, data_root: Optional[Path]) -> Inputs:
        return Inputs(tuple(d for d in self.datasets if not dataset_available(d, data_root)),
                      tuple(w for w in self.weights if not weights_intact(w)))

    def __bool__(self) -> bool:
        return bool(self.datasets or self.weights)


def weights_intact(name: str) -> bool:
    """Present and matching its published sha256 (a corrupt download counts as missing: `prepare` names it)."""
    if not weights_present(name):
        return False
    try:
        verify_weights(name)
    except WeightsCorrupt:
        return False
    return True


class InputsMissing(Exception):
    """Files the cells need are not on this machine. The message is one line: what, where, the fix."""


def describe_missing(missing: Inputs, data_root: Optional[Path]) -> str:
    parts = []
    if missing.datasets:
        parts.append(f"dataset(s) {', '.join(missing.datasets)} (under {resolve_root(data_root)})")
    if missing.weights:
        parts.append(f"pretrained weights for {', '.join(missing.weights)}")
    return " and ".join(parts)


def check_inputs(cells: list[Cell], data_root: Optional[Path], grid: str) -> None:
    """Raise InputsMissing listing every dataset and weights file of `cells` that is not here."""
    missing = Inputs.of(cells).missing(data_root)
    if not missing:
        return
    root = f" --data-root {data_root}" if data_root is not None else ""
    raise InputsMissing(
        f"missing {describe_missing(missing, data_root)}; fetch them on a machine with internet (a login node) with "
        f"`reprogbench prepare {grid}{root}` (add --weights-dir DIR to keep weights on a shared filesystem), "
        "then rerun; nothing was started"
    )
