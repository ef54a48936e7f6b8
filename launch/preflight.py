"""Checks before any cell runs, so that a missing dataset or weights file is one clear error up front
(exit 2, nothing written) instead of the same failure recorded in every cell that needs it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from bench.config import IMAGENET, Cell
from bench.data import dataset_available, load_task
from bench.models.thesis_nets import weights_path


def check_inputs(cells: list[Cell], data_root: Optional[Path]) -> None:
    """Raise DatasetMissing / WeightsMissing for the first input of `cells` that is not on this machine."""
    datasets = sorted({c.task for c in cells})
    for name in datasets:
        if not dataset_available(name, data_root):
            load_task(name, data_root=data_root)  # raises DatasetMissing with where it looked and the fix
    for cell in cells:
        original = cell.spec["original"]
        if original and original["trained_on"] == IMAGENET:
            weights_path(cell.backbone)  # torchvision or timm: raises WeightsMissing naming `prepare`
