"""An encoded-image dataset for the data-path tests: PNG files in class folders, listed as `ImageFiles` by a loader
registered (once, at test time, never at import) under `test_image_folder`, so the real `load_task` ->
`materialise` -> cache path reads them.

Image k of class c has (c, k // 256, k % 256) in its top-left quarter: a loaded image says which file it came from,
at any size it is decoded at.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
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


def prebuilt_dataset(root: Path, images: int, side: int) -> int:
    """`images` files listed by the loader and their decoded cache, written as the library writes it: the files
    are empty (the cache is keyed by their names, sizes and times, so they are never opened), the cache holds
    random images whose brightness is their class. -> the cache's bytes."""
    from bench.data.cache import CacheWriter, cache_entry
    from bench.data.registry import CACHE_DIR

    per_class = images // 4
    for c in range(4):
        folder = root / "test_image_folder" / f"class_{c}"
        folder.mkdir(parents=True)
        for k in range(per_class):
            (folder / f"{k:05d}.png").touch()
    files = list_files(root).train
    writer = CacheWriter(cache_entry(root / CACHE_DIR, files.cache_key, files.root, files.files, side))
    rng = np.random.default_rng(0)
    for lo in range(0, len(files), 4096):  # a chunk at a time: the test itself stays small too
        hi = min(lo + 4096, len(files))
        chunk = rng.integers(0, 64, size=(hi - lo, 3, side, side), dtype=np.uint8)
        chunk += (files.labels[lo:hi].numpy() * 60).astype(np.uint8)[:, None, None, None]
        writer.array[lo:hi] = chunk
    writer.finish()
    return len(files) * 3 * side * side


def run_child(script: str, args: list[str]) -> tuple[list[dict], int]:
    """`python -c script args`: its JSON lines, and the peak of its anonymous resident memory (RssAnon, sampled
    every 2 ms). Its output goes to files, so a chatty child never blocks on a full pipe while it is sampled."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), str(Path(__file__).parent)])}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-c", script, *args], stdout=out, stderr=err, text=True, env=env)
        peak, status = 0, Path(f"/proc/{child.pid}/status")
        while child.poll() is None:
            try:
                line = next(x for x in status.read_text().splitlines() if x.startswith("RssAnon:"))
                peak = max(peak, int(line.split()[1]) * 1024)
            except (OSError, StopIteration):
                pass
            time.sleep(0.002)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    assert child.returncode == 0, stderr[-3000:]
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")], peak
