"""Encoded image files (`ImageFiles`) -> uint8 arrays (`ImageSet`) at the size a cell needs, decoded once.

Each image is converted to RGB and resized to SIZE x SIZE (the whole image, aspect ratio not kept: PIL's bilinear
filter, which antialiases when shrinking, as `torchvision.transforms.Resize((s, s))` does to a PIL image).
PIL releases the GIL while decoding and resizing, so threads use every core without pickling images. The decoded
rows go straight into the memory-mapped cache (bench.data.cache), which every later load reads instead.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .cache import CacheWriter, cache_entry, read_cached
from .types import ImageFiles, ImageRows


def decode_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores))


def decode_one(path: str, size: int) -> np.ndarray:
    """(3, size, size) uint8 from one encoded file."""
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb).transpose(2, 0, 1)


def decode_into(out: np.ndarray, paths: list[str], size: int, desc: str) -> None:
    """Decode `paths` into the rows of `out` (a writable memmap), in order, with a progress bar. Images are decoded
    a window at a time and written at once, so memory stays at a window's worth whatever the dataset's size."""
    window = 64 * decode_workers()
    with ThreadPoolExecutor(decode_workers()) as pool, \
            tqdm(total=len(paths), desc=desc, unit="img", file=sys.stderr, mininterval=1,
                 disable=len(paths) < 1000) as progress:
        for lo in range(0, len(paths), window):
            for k, chw in enumerate(pool.map(lambda p: decode_one(p, size), paths[lo:lo + window]), start=lo):
                out[k] = chw
            progress.update(min(window, len(paths) - lo))


def materialise(files: ImageFiles, size: int, cache_dir: Path | None = None) -> ImageRows:
    """Every file of `files` at (3, size, size) uint8, in order: read from the decoded cache in `cache_dir`
    (default `<files.root>/.cache`; bench.data.cache), decoded into it first if it has none. The images stay in
    the memory-mapped file; the set and its `take`s are views of it."""
    entry = cache_entry(cache_dir or files.root / ".cache", files.cache_key, files.root, files.files, size)
    images = read_cached(entry)
    if images is None:
        writer = CacheWriter(entry)
        try:
            decode_into(writer.array, [str(files.root / f) for f in files.files], size,
                        f"{files.cache_key}: decoding {len(files)} images to {size}x{size}")
        except BaseException:
            writer.abort()
            raise
        images = writer.finish()
    return ImageRows.whole(images, files.labels, files.source_index)
