"""Listing encoded images without decoding one: an ImageFolder tree (torchvision's own listing) and CoOp's split
files, each to `ImageFiles` with its class names.

Both are what a folder dataset's loader needs; decoding happens later, once, at the size a cell asks for
(bench.data.decode). Sample order is fixed by the listing (sorted class folders and file names; a split file's
order), so `source_index` means the same on every machine.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from .types import ImageFiles

SPLIT_PARTS = ("train", "val", "test")  # CoOp's split file: {"train": [[relpath, label, classname], ...], ...}


class BadListing(ValueError):
    """Files that are there but do not fit the layout (a split file naming a missing image, an unknown class)."""


def image_files(root: Path, files: Sequence[str], labels: Sequence[int], cache_key: str) -> ImageFiles:
    return ImageFiles(Path(root), list(files), torch.tensor(list(labels), dtype=torch.int64), cache_key)


def image_folder(folder: Path, cache_key: str, classes: Sequence[str] | None = None) -> tuple[ImageFiles, list[str]]:
    """`folder/<class>/<image>` as torchvision's ImageFolder lists it (sorted classes and files, image
    extensions only), relative to `folder`. With `classes` (a test folder read against its train folder's),
    labels are positions in that list, a class may have no file, and a class not in it is an error."""
    try:
        found, _ = find_classes(str(folder))
        unknown = sorted(set(found) - set(classes or found))
        if unknown:
            raise BadListing(f"{folder}: class folder(s) {', '.join(unknown)} are not among the train classes")
        classes = list(classes or found)
        samples = make_dataset(str(folder), {c: i for i, c in enumerate(classes)}, extensions=IMG_EXTENSIONS,
                               allow_empty=classes != found)
    except FileNotFoundError as e:  # torchvision's: no class folder, or a class folder without an image
        raise BadListing(f"{folder}: {' '.join(str(e).split())}") from None
    files = [str(Path(path).relative_to(folder)) for path, _ in samples]
    return image_files(folder, files, [label for _, label in samples], cache_key), classes


def read_split_file(path: Path) -> dict[str, list[tuple[str, int, str]]]:
    """CoOp's split json: (relative path, label, class name) per image, for each of train, val and test."""
    with open(path) as f:
        raw = json.load(f)
    if not isinstance(raw, dict) or not all(isinstance(raw.get(p), list) for p in SPLIT_PARTS):
        raise BadListing(f"{path}: expected CoOp's split format, a mapping with lists 'train', 'val' and 'test' "
                         "of [relative path, label, class name]")
    return {p: [(str(item[0]), int(item[1]), str(item[2])) for item in raw[p]] for p in SPLIT_PARTS}


def split_class_names(split: dict[str, list[tuple[str, int, str]]], path: Path) -> list[str]:
    """Class names in label order, as the split file pairs them; every label 0..k-1 named once."""
    named: dict[int, str] = {}
    for items in split.values():
        for _, label, name in items:
            if named.setdefault(label, name) != name:
                raise BadListing(f"{path}: label {label} is named both {named[label]!r} and {name!r}")
    if sorted(named) != list(range(len(named))):
        raise BadListing(f"{path}: labels must be 0..{len(named) - 1} with none missing")
    return [named[i] for i in range(len(named))]


def check_files_exist(root: Path, files: Sequence[str], what: str) -> None:
    """One listing per folder, not one stat per image: a split file naming a file that is not there fails here,
    in one line, instead of halfway through decoding."""
    listed: dict[Path, set[str]] = {}
    missing = []
    for name in files:
        parent = (root / name).parent
        if parent not in listed:
            listed[parent] = {p.name for p in parent.iterdir()} if parent.is_dir() else set()
        if Path(name).name not in listed[parent]:
            missing.append(name)
    if missing:
        raise BadListing(f"{what}: {len(missing)} of {len(files)} listed image(s) are not under {root} "
                         f"(first: {missing[0]}); an incomplete download?")


def check_class_count(dataset: str, names: Sequence[str], expected: int, where: Path) -> tuple[str, ...]:
    """The class names, if there are as many as the dataset has: a wrong count would silently shift labels."""
    if len(names) != expected:
        raise BadListing(f"{dataset}: {where} names {len(names)} classes, {dataset} has {expected}")
    return tuple(names)
