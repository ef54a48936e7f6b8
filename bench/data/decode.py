"""Encoded image files (`ImageFiles`) -> uint8 arrays (`ImageSet`) at the size a cell needs, decoded once.

Each image is converted to RGB and resized to SIZE x SIZE (the whole image, aspect ratio not kept: PIL's bilinear
filter, which antialiases when shrinking, as `torchvision.transforms.Resize((s, s))` does to a PIL image).
PIL releases the GIL while decoding and resizing, so threads use every core without pickling images.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .types import ImageFiles, ImageSet


def decode_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores))


def decode_one(path: str, size: int) -> np.ndarray:
    """(3, size, size) uint8 from one encoded file."""
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb).transpose(2, 0, 1)


def materialise(files: ImageFiles, size: int) -> ImageSet:
    """Every file of `files` decoded to (N, 3, size, size) uint8, in order, with a progress bar."""
    out = torch.empty((len(files), 3, size, size), dtype=torch.uint8)
    paths = [str(files.root / f) for f in files.files]
    with ThreadPoolExecutor(decode_workers()) as pool:
        decoded = pool.map(lambda p: decode_one(p, size), paths)
        desc = f"{files.cache_key}: decoding {len(paths)} images to {size}x{size}"
        for k, chw in enumerate(tqdm(decoded, total=len(paths), desc=desc, unit="img", file=sys.stderr,
                                     mininterval=1, disable=len(paths) < 1000)):
            out[k] = torch.from_numpy(np.ascontiguousarray(chw))
    return ImageSet(out, files.labels, files.source_index)
