"""Caltech-101 and Caltech-256 (and the thesis's 97-class Caltech-101 and 20-per-class Caltech-256), read by
torchvision's own classes.

The images are JPEGs of varying size, some greyscale. They are decoded once, converted to RGB and resized to
SIZE x SIZE (the whole image, aspect ratio not kept: PIL `Image.resize` with the bilinear filter, which
antialiases when shrinking, i.e. what `torchvision.transforms.Resize((224, 224))` does to a PIL image), and the
uint8 tensor is cached next to the files so later loads read it back (memory-mapped) in seconds.

The cache is keyed by the list of files it was decoded from (relative path and byte size of each, in order):
any file added, removed, renamed or resized makes the next load decode again instead of reusing stale tensors.
Checking the key costs one directory listing and one stat per image, no JPEG decoding.

Sample order, labels and `source_index` follow torchvision: classes in sorted folder order (Caltech-101 without
BACKGROUND_Google), files in sorted name order within a class; `source_index` is the position in that list of
the whole dataset (for the reduced Caltech-256, the position in the full Caltech-256 list; for the 97-class
Caltech-101, the position in the 101-class list, while its labels are renumbered 0..96 over the classes kept).
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import datasets as tvd
from tqdm import tqdm

from .decode import decode_workers
from .registry import register_dataset
from .types import DatasetInfo, DatasetMissing, ImageSet, SourceData

SIZE = 224  # the ImageNet backbones' input resolution
REDUCED_PER_CLASS = 20  # Kloberdanz 2020: the first 20 images of each Caltech-256 class (257 x 20 = 5,140)
CACHE_FORMAT = 1  # bump when the decoding changes, so old caches are not reused


@dataclass(frozen=True)
class _Listing:
    """What torchvision would read, in its order: relative paths, labels, class names and file sizes."""

    positions: list[int]  # in torchvision's list of the whole dataset, sorted by (class folder, file name)
    files: list[str]  # "<class folder>/<file name>"
    labels: list[int]
    classes: list[str]
    sizes: list[int]


@dataclass(frozen=True)
class CaltechSource:
    name: str  # registry name
    reader: type  # torchvision class: lists the classes and opens the files (download=False)
    folder: str  # torchvision's folder under the data root
    images_dir: str  # the extracted category folders, under `folder`
    num_classes: int
    source: str  # DatasetInfo.source
    prepare_name: str  # the dataset whose `prepare` fetches these files
    per_class: int | None = None  # keep only the first n files (sorted by name) of each class
    exclude: tuple[str, ...] = ()  # class folders left out (labels renumbered over the classes kept)

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(self.name, self.num_classes, 3, SIZE, self.source)

    def _dir(self, root: Path) -> Path:
        return root / self.folder / self.images_dir

    def cache_path(self, root: Path) -> Path:
        subset = "" if self.per_class is None else f"first{self.per_class}_"
        subset += f"without{len(self.exclude)}_" if self.exclude else ""
        return root / self.folder / f"decoded_{subset}{SIZE}.pt"

    def available(self, root: Path) -> bool:
        return self._dir(root).is_dir()  # torchvision's own check (`_check_integrity`)

    def _missing(self, root: Path) -> DatasetMissing:
        fix = f"run `reprogbench prepare {self.prepare_name} --data-root {root}` on a machine with internet"
        return DatasetMissing(self.name, [str(self._dir(root))], fix)

    def _file_name(self, label: int, number: int) -> str:
        # The names torchvision's __getitem__ opens: files are numbered 1..n within each class folder.
        if self.reader is tvd.Caltech101:
            return f"image_{number:04d}.jpg"
        return f"{label + 1:03d}_{number:04d}.jpg"

    def _listing(self, ds: Any) -> _Listing:
        """The files kept, checked to exist under the names torchvision will open (one listing per folder)."""
        positions, files, labels, sizes = [], [], [], []
        folders: dict[int, dict[str, os.DirEntry]] = {}
        counts = Counter(ds.y)
        kept = [c for c in ds.categories if c not in self.exclude]
        renumber = {i: kept.index(c) for i, c in enumerate(ds.categories) if c in kept}
        for i, (label, number) in enumerate(zip(ds.y, ds.index, strict=True)):
            if self.per_class is not None and number > self.per_class:
                continue  # numbered names sort in number order: this keeps the first n sorted names
            if label not in renumber:
                continue
            folder = Path(ds.root) / self.images_dir / ds.categories[label]
            if label not in folders:
                folders[label] = {e.name: e for e in os.scandir(folder)}
            name = self._file_name(label, number)
            entry = folders[label].get(name)
            if entry is None or not entry.is_file():
                raise ValueError(
                    f"{self.name}: torchvision counts {counts[label]} images in {folder} and so expects files "
                    f"numbered 1..{counts[label]}, but there is no {name}; remove stray files, or re-run "
                    f"`reprogbench prepare {self.prepare_name}` into an empty data root"
                )
            positions.append(i)
            files.append(f"{ds.categories[label]}/{name}")
            labels.append(renumber[label])
            sizes.append(entry.stat().st_size)
        return _Listing(positions, files, labels, kept, sizes)

    def _key(self, listing: _Listing) -> str:
        excluded = f" exclude={','.join(self.exclude)}" if self.exclude else ""  # old keys stay valid
        h = hashlib.sha256(f"format={CACHE_FORMAT} size={SIZE} per_class={self.per_class}{excluded}\n".encode())
        for path, size in zip(listing.files, listing.sizes, strict=True):
            h.update(f"{path}\t{size}\n".encode())
        return h.hexdigest()

    def load(self, root: Path) -> SourceData:
        # Checked before torchvision, which would create the folder and then advise download=True.
        if not self.available(root):
            raise self._missing(root)
        ds = self.reader(str(root), download=False)  # lists the folders only; reads no image
        found = len([c for c in ds.categories if c not in self.exclude])
        if found > self.num_classes:
            raise ValueError(f"{self.name}: {found} class folders in {self._dir(root)}, "
                             f"expected {self.num_classes}")
        if found < self.num_classes:
            print(f"reprogbench: warning: {self.name}: only {found} of {self.num_classes} class "
                  f"folders in {self._dir(root)} (incomplete download?)", file=sys.stderr)
        listing = self._listing(ds)
        key, path = self._key(listing), self.cache_path(root)
        cached = _read_cache(path, key)
        if cached is not None:
            images = cached["images"]
        else:
            desc = f"{self.name}: decoding {len(listing.files)} JPEGs to {SIZE}x{SIZE}"
            images = _decode(ds, listing.positions, desc)
            _write_cache(path, {
                "format": CACHE_FORMAT, "key": key, "size": SIZE, "images": images,
                "files": listing.files, "classes": listing.classes,
            })
        labels = torch.tensor(listing.labels, dtype=torch.int64)
        source_index = torch.tensor(listing.positions, dtype=torch.int64)
        return SourceData(train=ImageSet(images, labels, source_index), test=None)

    def prepare(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        self.reader(str(root), download=True)  # torchvision's URL and md5; a no-op when the folder is there
        return self._dir(root)


def _decode_one(ds: Any, i: int) -> np.ndarray:
    image, _ = ds[i]  # torchvision's __getitem__: a PIL image, not yet decoded
    with image:
        rgb = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.array(rgb)  # (SIZE, SIZE, 3), a writable copy


def _decode(ds: Any, positions: list[int], desc: str) -> torch.Tensor:
    out = torch.empty((len(positions), 3, SIZE, SIZE), dtype=torch.uint8)
    # PIL releases the GIL while decoding and resizing, so threads use every core without pickling images.
    with ThreadPoolExecutor(decode_workers()) as pool:
        decoded = pool.map(lambda i: _decode_one(ds, i), positions)
        progress = tqdm(decoded, total=len(positions), desc=desc, unit="img", file=sys.stderr, mininterval=1)
        for k, hwc in enumerate(progress):
            out[k] = torch.from_numpy(hwc).permute(2, 0, 1)
    return out


def _read_cache(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:  # memory-mapped: the key is checked without reading the images
        cached = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # a damaged or foreign file: decode again and overwrite it
        print(f"reprogbench: ignoring unreadable cache {path}: {e}", file=sys.stderr)
        return None
    return cached if isinstance(cached, dict) and cached.get("key") == key else None


def _write_cache(path: Path, payload: dict) -> None:
    """Temporary file + rename: a killed job or two jobs at once never leave a truncated cache."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as e:  # a read-only data root: still usable, just decoded every time
        print(f"reprogbench: warning: cannot write {path} ({e}); the images will be decoded again next time",
              file=sys.stderr)
        return
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


CALTECH101 = CaltechSource(
    "caltech101", tvd.Caltech101, "caltech101", "101_ObjectCategories", 101,
    f"torchvision Caltech101 (JPEGs, BACKGROUND_Google dropped), RGB resized to {SIZE}x{SIZE} bilinear",
    prepare_name="caltech101",
)
CALTECH256 = CaltechSource(
    "caltech256", tvd.Caltech256, "caltech256", "256_ObjectCategories", 257,
    f"torchvision Caltech256 (JPEGs, 257.clutter included), RGB resized to {SIZE}x{SIZE} bilinear",
    prepare_name="caltech256",
)
CALTECH256_REDUCED = CaltechSource(
    "caltech256_reduced", tvd.Caltech256, "caltech256", "256_ObjectCategories", 257,
    f"torchvision Caltech256, first {REDUCED_PER_CLASS} files (sorted) of each class as in Kloberdanz 2020, "
    f"RGB resized to {SIZE}x{SIZE} bilinear",
    prepare_name="caltech256", per_class=REDUCED_PER_CLASS,
)
# The thesis's Caltech-101 (Kloberdanz 2020, Table 5.1): "we will exclude 5 of the categories which have the most
# images" -- `exclude = ['BACKGROUND_Google', 'Motorbikes', 'airplanes', 'Faces_easy', 'Faces']` in
# ekloberdanz/Thesis_Adversarial_Reprogramming FinalCode/Imagenet_Caltech101_transfer_learning.ipynb, which then
# loads "6209 images from 97 categories". torchvision already drops BACKGROUND_Google; the other four go here.
THESIS_EXCLUDED = ("Motorbikes", "airplanes", "Faces_easy", "Faces")
CALTECH101_THESIS = CaltechSource(
    "caltech101_thesis", tvd.Caltech101, "caltech101", "101_ObjectCategories", 97,
    f"torchvision Caltech101 without BACKGROUND_Google and the thesis's four largest classes "
    f"({', '.join(THESIS_EXCLUDED)}): 97 classes, 6,209 images, RGB resized to {SIZE}x{SIZE} bilinear",
    prepare_name="caltech101", exclude=THESIS_EXCLUDED,
)
SOURCES = (CALTECH101, CALTECH101_THESIS, CALTECH256, CALTECH256_REDUCED)
for _source in SOURCES:  # decoded once to 224x224 RGB
    register_dataset(_source.info, available=_source.available, prepare=_source.prepare)(_source.load)
