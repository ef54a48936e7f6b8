"""The dataset registry: one decorated loader per dataset with its metadata, class subsets in one line each,
and the honest split.

An entry is `@register_dataset(DatasetInfo(...), available=..., prepare=...)` on a loader `root -> SourceData`;
every module of bench/data is imported before the first lookup (bench.registry), so the entry's module is all a
new dataset takes (tests/test_data.py checks it).
"""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch

from bench.registry import Registry

from . import joint
from .decode import materialise
from .roots import resolve_root
from .splits import stratified_split, stratified_subsample
from .types import DatasetInfo, DatasetMissing, ImageFiles, ImageSet, SourceData, TaskData

Loader = Callable[[Path], SourceData]  # reads what it needs under the data root
CACHE_DIR = ".cache"  # under the data root: encoded datasets decoded at each size asked for (bench.data.cache)


def _always(root: Path) -> bool:
    return True


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset (or a joint task) as one record: its loader and what it declared."""

    info: DatasetInfo
    load: Loader
    available: Callable[[Path], bool] = _always  # cheap file check, never reads data
    prepare: Callable[[Path], Path] | None = None  # None: nothing to fetch


DATASETS: Registry[Loader] = Registry(kind="dataset", package="bench.data")


def register_dataset(info: DatasetInfo, *, available: Callable[[Path], bool] = _always,
                     prepare: Callable[[Path], Path] | None = None) -> Callable[[Loader], Loader]:
    """`@register_dataset(DatasetInfo(...))` on a loader registers it under `info.name`."""

    def wrap(load: Loader) -> Loader:
        return DATASETS.register(info.name, load, info=info, available=available, prepare=prepare)

    return wrap


def dataset_entry(name: str) -> DatasetEntry:
    return DatasetEntry(load=DATASETS.get(name), **DATASETS.metadata(name))


def _load_subset(name: str, base: DatasetEntry, classes: tuple[int, ...], root: Path) -> SourceData:
    try:
        data = base.load(root)
    except DatasetMissing as e:  # name what was asked for, keep the base's folders and fix
        raise DatasetMissing(f"{name} (classes of {base.info.name})", e.looked_in, e.fix) from None
    relabel = torch.full((base.info.num_classes,), -1, dtype=torch.int64)
    relabel[list(classes)] = torch.arange(len(classes))

    def keep(part: ImageSet | None) -> ImageSet | None:
        if part is None:
            return None
        picked = part.take(torch.isin(part.labels, torch.tensor(classes)).nonzero().flatten())
        picked.labels = relabel[picked.labels]
        return picked

    return SourceData(train=keep(data.train), test=keep(data.test))


def register_subset(name: str, base: str, classes: Sequence[int]) -> DatasetEntry:
    """Register `name`: the samples of `base` in `classes`, re-labelled 0..k-1 in the order given."""
    parent, classes = dataset_entry(base), tuple(classes)
    if len(set(classes)) != len(classes) or not all(0 <= c < parent.info.num_classes for c in classes):
        last = parent.info.num_classes - 1
        raise ValueError(f"{name}: classes {classes} must be distinct labels of {base} (0..{last})")
    info = replace(
        parent.info, name=name, num_classes=len(classes),
        source=f"{parent.info.source}, classes {list(classes)} re-labelled 0..{len(classes) - 1}",
    )
    load = register_dataset(info, available=parent.available, prepare=parent.prepare)(
        partial(_load_subset, name, parent, classes))
    return DatasetEntry(info, load, parent.available, parent.prepare)


# --------------------------------------------------------------------------- public functions


def list_datasets() -> list[str]:
    return DATASETS.names()


def _joint_entry(name: str) -> DatasetEntry:
    """`a+b`: a joint task (bench.data.joint); each part must be a registered dataset."""
    parts = [dataset_entry(p) for p in joint.parts_of(name)]

    def prepare_parts(root: Path) -> Path:
        for p in parts:
            if p.prepare is not None and not p.available(root):
                p.prepare(root)
        return root

    return DatasetEntry(joint.joint_info(name, [p.info for p in parts]), load=None,  # type: ignore[arg-type]
                        available=lambda root: all(p.available(root) for p in parts),
                        prepare=prepare_parts if any(p.prepare is not None for p in parts) else None)


def _entry(name: str) -> DatasetEntry:
    return _joint_entry(name) if joint.is_joint(name) else dataset_entry(name)


def known_task(name: str) -> bool:
    """A registered dataset, or a joint task of registered datasets (`a+b`)."""
    return all(p in DATASETS for p in joint.parts_of(name))


def dataset_info(name: str) -> DatasetInfo:
    """Metadata only, no file read: grids are validated with this before any data exists."""
    return _entry(name).info


def part_infos(name: str) -> list[DatasetInfo]:
    """The tasks a joint task is made of (a single task: itself)."""
    return [dataset_info(p) for p in joint.parts_of(name)]


def dataset_available(name: str, data_root: str | Path | None = None) -> bool:
    """Whether `load_task(name, data_root=...)` would find its files (checks paths only)."""
    return _entry(name).available(resolve_root(data_root))


def needs_download(name: str) -> bool:
    """Whether `name` is read from files that `prepare` fetches (False: bundled or generated)."""
    return _entry(name).prepare is not None


def prepare(name: str, data_root: str | Path) -> Path:
    """Login-node step: fetch `name` into `data_root` (needs internet unless already there); returns its folder."""
    entry, root = _entry(name), resolve_root(data_root)
    if entry.prepare is None:
        print(f"{name}: nothing to prepare ({entry.info.source})", file=sys.stderr)
        return root
    return entry.prepare(root)


def _fingerprint(*parts: torch.Tensor) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.to(torch.int64).numpy().astype("<i8").tobytes() + b"|")
    return h.hexdigest()[:16]


def load_task(
    name: str,
    *,
    data_root: str | Path | None = None,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    max_train: int | None = None,
    image_size: int | None = None,
) -> TaskData:
    """Train/val/test for `name`.

    With an official test split, test is that set and val is a stratified `val_fraction` of the official train
    set, so the test set is never touched by model selection. Without one, test is a stratified `test_fraction`
    of everything and val a stratified `val_fraction` (of everything) from the rest. `max_train` subsamples
    train only, so val/test numbers stay comparable across demo and full runs. `image_size` is the size encoded
    files (`DatasetInfo.encoded`) are decoded at (default: the dataset's `size`); arrays keep their native size.
    """
    if joint.is_joint(name):  # each part split as it is alone, then side by side
        return joint.combine(dataset_info(name), [
            load_task(p, data_root=data_root, split_seed=split_seed, val_fraction=val_fraction,
                      test_fraction=test_fraction, max_train=max_train, image_size=image_size)
            for p in joint.parts_of(name)])
    entry = dataset_entry(name)
    if not 0 <= val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"need 0 <= val_fraction < 1, 0 < test_fraction < 1 and their sum < 1; got {val_fraction}, {test_fraction}"
        )
    if max_train is not None and max_train < 1:
        raise ValueError(f"max_train must be >= 1 or None, got {max_train}")
    root = resolve_root(data_root)
    data = entry.load(root)
    size = image_size or entry.info.size
    # decoded once per (files, size) into a memory-mapped cache under the data root; the splits are views of it
    pool, official_test = (materialise(s, size, root / CACHE_DIR) if isinstance(s, ImageFiles) else s
                           for s in (data.train, data.test))
    if official_test is None:
        test_at, val_at, train_at = stratified_split(pool.labels, [test_fraction, val_fraction], split_seed)
        test = pool.take(test_at)
    else:
        val_at, train_at = stratified_split(pool.labels, [val_fraction], split_seed)
        test = official_test
    if max_train is not None:
        train_at = train_at[stratified_subsample(pool.labels[train_at], max_train, split_seed)]
    train, val = pool.take(train_at), pool.take(val_at)
    split = {
        "seed": split_seed,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction if data.test is None else None,
        "max_train": max_train,
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "source": entry.info.source,
        # Same fingerprint <=> same samples in each split: lets results from different machines be compared.
        "fingerprint": _fingerprint(train.source_index, val.source_index, test.source_index),
    }
    return TaskData(entry.info, train, val, test, split)
