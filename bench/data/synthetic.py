"""Datasets that need no files: sklearn's bundled digits, and the generated counting-squares task."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from .registry import register_dataset
from .types import DatasetInfo, ImageSet, SourceData

# Counting squares (Elsayed, Goodfellow & Sohl-Dickstein 2018, "Adversarial Reprogramming of Neural Networks").
SQUARES_GRID = 9  # 9 x 9 cells ...
SQUARES_CELL = 4  # ... of 4 x 4 pixels: a 3 x 3 white square and a 1-pixel black gap -> 36 x 36 images
SQUARES_MAX = 10  # 1..10 squares -> labels 0..9
SQUARES_PER_COUNT = 600
SQUARES_SEED = 180611146  # fixed (arXiv 1806.11146): the images are part of the benchmark, not of a run


@register_dataset(DatasetInfo("digits", 10, 1, 8, "sklearn load_digits (bundled), 0..16 scaled to 0..255"))
def load_digits(root: Path) -> SourceData:
    # sklearn's import is slow; pay for it only when digits are loaded.
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    grey = torch.as_tensor(bunch.images, dtype=torch.float64)  # 0..16
    images = torch.floor(grey * 255 / 16 + 0.5).to(torch.uint8)[:, None]  # round half up, exact in float64
    return SourceData(train=ImageSet(images, torch.as_tensor(bunch.target, dtype=torch.int64)), test=None,
                      class_names=tuple(str(n) for n in bunch.target_names))  # the digits 0..9


@lru_cache(maxsize=1)
def _squares() -> tuple[torch.Tensor, torch.Tensor]:
    n_images = SQUARES_MAX * SQUARES_PER_COUNT
    counts = torch.arange(n_images) % SQUARES_MAX + 1
    g = torch.Generator().manual_seed(SQUARES_SEED)
    keys = torch.rand(n_images, SQUARES_GRID**2, generator=g, dtype=torch.float64)
    # A cell is filled when its random key ranks among the image's `count` smallest: `count` distinct cells.
    rank = torch.argsort(torch.argsort(keys, dim=1, stable=True), dim=1, stable=True)
    filled = (rank < counts[:, None]).view(n_images, SQUARES_GRID, 1, SQUARES_GRID, 1)
    cell = torch.zeros(SQUARES_CELL, SQUARES_CELL, dtype=torch.bool)
    cell[: SQUARES_CELL - 1, : SQUARES_CELL - 1] = True
    pixels = filled & cell.view(1, 1, SQUARES_CELL, 1, SQUARES_CELL)  # (N, row, y, col, x)
    side = SQUARES_GRID * SQUARES_CELL
    images = pixels.reshape(n_images, 1, side, side).to(torch.uint8) * 255
    return images, counts - 1


@register_dataset(DatasetInfo("squares", SQUARES_MAX, 1, SQUARES_GRID * SQUARES_CELL,
                             "generated counting squares (Elsayed et al. 2018), fixed seed"))
def load_squares(root: Path) -> SourceData:
    images, labels = _squares()
    return SourceData(train=ImageSet(images, labels), test=None)  # take() copies, so the cache stays intact
