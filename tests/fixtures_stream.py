"""An encoded-image dataset for the data-path tests: PNG files in class folders, listed as `ImageFiles` by a loader
registered (once, at test time, never at import) under `test_image_folder`, so the real `load_task` ->
`materialise` -> cache path reads them.

Image k of class c has (c, k // 256, k % 256) in its top-left quarter: a loaded image says which file it came from,
at any size it is decoded at.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

NAME = "test_image_folder"
CLASSES = 4
FOLDER = NAME  # under the data root


def write_image_folder(root: Path, per_class: int, size: int = 12, seed: int = 0) -> list[Path]:
    """`per_class` PNGs of `size` x `size` (varying a little, as real photos do) in each class folder."""
    rng = np.random.default_rng(seed)
    paths = []
    for c in range(CLASSES):
        folder = Path(root) / FOLDER / f"class_{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            side = size + int(rng.integers(0, 3))
            pixels = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
            pixels[..., 0] += np.uint8(40 * c)  # a class signal a model can learn
            pixels[: side // 2, : side // 2] = (c, k // 256, k % 256)  # large: survives resizing
            path = folder / f"{k:05d}.png"
            Image.fromarray(pixels).save(path)
            paths.append(path)
    return paths


def list_files(root: Path):
    from bench.data.types import DatasetMissing, ImageFiles, SourceData

    folder = Path(root) / FOLDER
    if not folder.is_dir():
        raise DatasetMissing(NAME, [str(folder)], "write it with tests/fixtures_stream.py write_image_folder "
                             "(it is a test dataset; nothing to `reprogbench prepare`)")
    files, labels = [], []
    for c in range(CLASSES):
        names = sorted(p.name for p in (folder / f"class_{c}").iterdir())
        files += [f"class_{c}/{n}" for n in names]
        labels += [c] * len(names)
    train = ImageFiles(folder, files, torch.tensor(labels, dtype=torch.int64), cache_key=f"{NAME}-train")
    return SourceData(train=train, test=None)


def register() -> str:
    """Register the dataset (idempotent); -> its name."""
    from bench.data.registry import DATASETS, register_dataset
    from bench.data.types import DatasetInfo

    if NAME not in DATASETS:
        info = DatasetInfo(NAME, CLASSES, 3, 12, "PNG class folders written by tests/fixtures_stream.py",
                           encoded=True)
        register_dataset(info, available=lambda root: (Path(root) / FOLDER).is_dir())(list_files)
    return NAME
