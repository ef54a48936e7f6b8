"""The visual-prompting datasets stored as encoded image files, listed by torchvision's own dataset classes.

Food-101, Flowers-102, DTD, GTSRB, Oxford-IIIT Pet and EuroSAT are folders of JPEG (GTSRB: PPM) files. Each
loader builds the stock torchvision class with download=False and takes the file list and labels it made
(`_image_files`/`_labels`, `_samples`, `samples`), so the folder layout, split files and label order are
torchvision's; no image is decoded here. `load_task` decodes the files (bench.data.decode) at the size a cell
asks for, `DatasetInfo.size` by default: 224 for the large-image sets, EuroSAT's native 64, and 32 for GTSRB,
the size ILM-VP (Chen et al. 2023) feeds it at.

Splits are the official ones. Where there is an official val split (Flowers-102; DTD, partition 1) the pool that
`load_task` draws train and val from is official train + val, and test is the official test; EuroSAT has no
split, so `load_task` carves a seeded stratified test from it. `source_index` is a sample's position in its
official list (the pool: train, then val).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

import torch
from torchvision import datasets as tvd

from .registry import register_dataset
from .types import DatasetInfo, DatasetMissing, ImageFiles, SourceData, readable

LARGE = 224  # the ImageNet backbones' input resolution: the default decode size of the large-image sets
DTD_PARTITION = 1  # DTD ships 10 train/val/test partitions; the first is the one papers report


class _Flowers102Files(tvd.Flowers102):
    # torchvision checks the md5 of the two .mat files on every load, which refuses fixtures in the same format;
    # `prepare` downloads with the stock class, which verifies them. md5=None: `check_integrity` tests existence.
    _file_dict: ClassVar[dict] = {key: (name, None) for key, (name, _) in tvd.Flowers102._file_dict.items()}


@dataclass(frozen=True)
class Listing:
    """One official split as torchvision lists it: file paths, labels, and class names where it has them."""

    files: list[str]
    labels: list[int]
    classes: tuple[str, ...] = ()


def _food101(root: Path, split: str) -> Listing:
    ds = tvd.Food101(str(root), split=split)
    return Listing([str(f) for f in ds._image_files], list(ds._labels), tuple(ds.classes))


def _flowers102(root: Path, split: str) -> Listing:
    ds = _Flowers102Files(str(root), split=split)
    return Listing([str(f) for f in ds._image_files], list(ds._labels))  # names: the class attribute


def _dtd(root: Path, split: str) -> Listing:
    ds = tvd.DTD(str(root), split=split, partition=DTD_PARTITION)
    return Listing([str(f) for f in ds._image_files], list(ds._labels), tuple(ds.classes))


def _gtsrb(root: Path, split: str) -> Listing:
    ds = tvd.GTSRB(str(root), split=split)  # train: class folders 00000..00042; test: GT-final_test.csv
    return Listing([p for p, _ in ds._samples], [label for _, label in ds._samples])  # no names anywhere


def _oxford_pets(root: Path, split: str) -> Listing:
    ds = tvd.OxfordIIITPet(str(root), split=split)  # breeds, from the annotation lists
    return Listing([str(f) for f in ds._images], list(ds._labels), tuple(ds.classes))


def _eurosat(root: Path) -> Listing:
    ds = tvd.EuroSAT(str(root))  # an ImageFolder: lists the class folders' files, opens none
    return Listing([p for p, _ in ds.samples], [label for _, label in ds.samples], tuple(ds.classes))


def _missing_files(root: Path, files: list[str]) -> list[str]:
    """The listed files that are not on disk: one directory listing per folder, not one stat per file."""
    present: dict[str, set[str]] = {}
    missing = []
    for f in files:
        folder, name = os.path.split(f)
        if folder not in present:
            present[folder] = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        if name not in present[folder]:
            missing.append(os.path.relpath(f, root))
    return missing


@dataclass(frozen=True)
class FileSource:
    info: DatasetInfo
    folder: str  # torchvision's folder under the data root
    needs: tuple[str, ...]  # under `folder`: what torchvision's existence check and split files need
    pool: tuple[Callable[[Path], Listing], ...]  # the official train (then val) split
    test: Callable[[Path], Listing] | None  # the official test split; None: load_task carves one
    download: Callable[[Path], object]  # the stock torchvision class(es) with download=True (md5s checked)

    @property
    def name(self) -> str:
        return self.info.name

    def available(self, root: Path) -> bool:
        return all((root / self.folder / p).exists() for p in self.needs)

    def _checked(self, root: Path, parts: list[Listing]) -> Listing:
        """`parts` joined, once their classes agree, their labels are in range and every file is on disk."""
        joined = Listing(sum((p.files for p in parts), []), sum((p.labels for p in parts), []), parts[0].classes)
        if any(p.classes != joined.classes for p in parts):  # each split numbers only the classes it lists
            raise ValueError(f"{self.name}: its split files list different classes under {root / self.folder}; "
                             f"re-run `reprogbench prepare {self.name}` into an empty data root")
        if joined.labels and not 0 <= min(joined.labels) <= max(joined.labels) < self.info.num_classes:
            raise ValueError(f"{self.name}: labels outside 0..{self.info.num_classes - 1} under {root / self.folder}")
        missing = _missing_files(root, joined.files)
        if missing:
            raise ValueError(f"{self.name}: {len(missing)} listed file(s) missing under {root} (first: "
                             f"{missing[0]}); re-run `reprogbench prepare {self.name} --data-root {root}`")
        return joined

    def _files(self, root: Path, listing: Listing, split: str) -> ImageFiles:
        return ImageFiles(root, [os.path.relpath(f, root) for f in listing.files],
                          torch.tensor(listing.labels, dtype=torch.int64), cache_key=f"{self.name}-{split}")

    def load(self, root: Path) -> SourceData:
        # Checked before torchvision, whose own error advises download=True (wrong on an offline node).
        if not self.available(root):
            fix = f"run `reprogbench prepare {self.name} --data-root {root}` on a machine with internet"
            raise DatasetMissing(self.name, [str(root / self.folder)], fix)
        pool = self._checked(root, [split(root) for split in self.pool])
        # the empty listing with the pool's classes makes `_checked` refuse a test split numbered differently
        test = None if self.test is None else self._checked(root, [self.test(root), Listing([], [], pool.classes)])
        names = () if self.info.class_names else readable(pool.classes)  # declared names need no files
        return SourceData(train=self._files(root, pool, "trainval" if len(self.pool) > 1 else "train"),
                          test=None if test is None else self._files(root, test, "test"), class_names=names)

    def prepare(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        self.download(root)  # a no-op when the files are there
        return root / self.folder


def _both(cls: type, splits: tuple[str, ...], root: Path) -> None:
    for split in splits:
        cls(str(root), split=split, download=True)


SOURCES = (
    FileSource(
        DatasetInfo("food101", 101, 3, LARGE, f"torchvision Food101 (JPEGs, longest side 512), official train/test; "
                    f"decoded to {LARGE}x{LARGE} by default", encoded=True),
        "food-101", ("images", "meta/train.json", "meta/test.json"),
        (partial(_food101, split="train"),), partial(_food101, split="test"),
        lambda root: tvd.Food101(str(root), download=True)),
    FileSource(
        DatasetInfo("flowers102", 102, 3, LARGE, f"torchvision Flowers102 (JPEGs), official train+val pool, "
                    f"official test; decoded to {LARGE}x{LARGE} by default",
                    class_names=tuple(tvd.Flowers102.classes), encoded=True),
        "flowers-102", ("jpg", "imagelabels.mat", "setid.mat"),
        (partial(_flowers102, split="train"), partial(_flowers102, split="val")), partial(_flowers102, split="test"),
        lambda root: tvd.Flowers102(str(root), download=True)),
    FileSource(
        DatasetInfo("dtd", 47, 3, LARGE, f"torchvision DTD (JPEGs), partition {DTD_PARTITION}: official train+val "
                    f"pool, official test; decoded to {LARGE}x{LARGE} by default", encoded=True),
        "dtd", tuple(f"dtd/labels/{s}{DTD_PARTITION}.txt" for s in ("train", "val", "test")) + ("dtd/images",),
        (partial(_dtd, split="train"), partial(_dtd, split="val")), partial(_dtd, split="test"),
        lambda root: tvd.DTD(str(root), download=True)),
    FileSource(
        DatasetInfo("gtsrb", 43, 3, 32, "torchvision GTSRB (PPMs, 15 to 250 px), official train/test; decoded to "
                    "32x32 by default, the size ILM-VP uses", encoded=True, unnamed=True),
        "gtsrb", ("GTSRB/Training", "GTSRB/Final_Test/Images", "GT-final_test.csv"),
        (partial(_gtsrb, split="train"),), partial(_gtsrb, split="test"),
        partial(_both, tvd.GTSRB, ("train", "test"))),
    FileSource(
        DatasetInfo("oxford_pets", 37, 3, LARGE, f"torchvision OxfordIIITPet (JPEGs, 37 breeds), official "
                    f"trainval/test; decoded to {LARGE}x{LARGE} by default", encoded=True),
        "oxford-iiit-pet", ("images", "annotations/trainval.txt", "annotations/test.txt"),
        (partial(_oxford_pets, split="trainval"),), partial(_oxford_pets, split="test"),
        lambda root: tvd.OxfordIIITPet(str(root), download=True)),
    FileSource(
        DatasetInfo("eurosat", 10, 3, 64, "torchvision EuroSAT RGB (64x64 JPEGs), no official split: seeded "
                    "stratified test and val", encoded=True),
        "eurosat", ("2750",), (_eurosat,), None,
        lambda root: tvd.EuroSAT(str(root), download=True)),
)
for _source in SOURCES:
    register_dataset(_source.info, available=_source.available, prepare=_source.prepare)(_source.load)
