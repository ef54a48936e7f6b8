"""The dataset registry: one decorated loader per dataset with its metadata, class subsets in one line each,
and the honest split.

An entry is `@register_dataset(DatasetInfo(...), available=..., prepare=...)` on a loader `root -> SourceData`;
every module of bench/data is imported before the first lookup (bench.registry), so the entry's module is all a
new dataset takes (tests/test_data.py checks it).

Open-ended datasets are a family named by prefix, `<prefix>:<spec>` (`folder:<name>`, a user's own image folder;
the same idea as backbone families in bench/models/registry.py): `register_dataset_family(DatasetFamily(...))`,
whose `resolve(spec, root)` gives the entry of one spec under a data root.
"""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch

from bench.registry import Registry, UnknownName

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

    names = tuple(data.class_names[c] for c in classes) if data.class_names else ()
    return SourceData(train=keep(data.train), test=keep(data.test), class_names=names)


def register_subset(name: str, base: str, classes: Sequence[int]) -> DatasetEntry:
    """Register `name`: the samples of `base` in `classes`, re-labelled 0..k-1 in the order given."""
    parent, classes = dataset_entry(base), tuple(classes)
    if len(set(classes)) != len(classes) or not all(0 <= c < parent.info.num_classes for c in classes):
        last = parent.info.num_classes - 1
        raise ValueError(f"{name}: classes {classes} must be distinct labels of {base} (0..{last})")
    info = replace(
        parent.info, name=name, num_classes=len(classes),
        class_names=tuple(parent.info.class_names[c] for c in classes) if parent.info.class_names else (),
        source=f"{parent.info.source}, classes {list(classes)} re-labelled 0..{len(classes) - 1}",
    )
    load = register_dataset(info, available=parent.available, prepare=parent.prepare)(
        partial(_load_subset, name, parent, classes))
    return DatasetEntry(info, load, parent.available, parent.prepare)


@dataclass(frozen=True)
class DatasetFamily:
    """Datasets named `<prefix>:<spec>`, too open-ended to register one by one (a user's folders).

    `accepts(spec)`: whether the spec is well formed (no file looked at: grids are validated with it);
    `resolve(spec, root)`: the spec's entry under a data root; it may list folders (a user's classes are written
    nowhere else) but never decodes an image, and raises DatasetMissing, one line with the layout, when the
    files are not there.
    """

    prefix: str
    accepts: Callable[[str], bool]
    resolve: Callable[[str, Path], DatasetEntry]
    description: str  # one line for docs/datasets.md
    example: str  # a full name, e.g. "folder:my_photos"


FAMILIES: Registry[DatasetFamily] = Registry(kind="dataset family", package="bench.data")


def register_dataset_family(family: DatasetFamily) -> DatasetFamily:
    return FAMILIES.register(family.prefix, family)


def family_of(name: str) -> tuple[DatasetFamily, str] | None:
    """(family, spec) for `prefix:spec`, None for a registered name."""
    prefix, colon, spec = name.partition(":")
    if not colon:
        return None
    if prefix not in FAMILIES:
        raise UnknownName(f"unknown dataset family {prefix!r} in {name!r}; known: "
                          f"{', '.join(f'{p}: (e.g. {FAMILIES.get(p).example})' for p in FAMILIES.names())}")
    return FAMILIES.get(prefix), spec


# --------------------------------------------------------------------------- public functions


def list_datasets() -> list[str]:
    return DATASETS.names()


def _joint_entry(name: str, data_root: str | Path | None) -> DatasetEntry:
    """`a+b`: a joint task (bench.data.joint); each part must be a registered dataset or a family's."""
    parts = [_entry(p, data_root) for p in joint.parts_of(name)]

    def prepare_parts(root: Path) -> Path:
        for p in parts:
            if p.prepare is not None and not p.available(root):
                p.prepare(root)
        return root

    return DatasetEntry(joint.joint_info(name, [p.info for p in parts]), load=None,  # type: ignore[arg-type]
                        available=lambda root: all(p.available(root) for p in parts),
                        prepare=prepare_parts if any(p.prepare is not None for p in parts) else None)


def _entry(name: str, data_root: str | Path | None = None) -> DatasetEntry:
    """The entry of a registered name, a joint task, or a family's `prefix:spec` resolved under `data_root`."""
    if joint.is_joint(name):
        return _joint_entry(name, data_root)
    family = family_of(name)
    return family[0].resolve(family[1], resolve_root(data_root)) if family else dataset_entry(name)


def _known_name(name: str) -> bool:
    prefix, colon, spec = name.partition(":")
    return prefix in FAMILIES and FAMILIES.get(prefix).accepts(spec) if colon else name in DATASETS


def known_task(name: str) -> bool:
    """A registered dataset, a family's well-formed `prefix:spec`, or a joint task of those (`a+b`); reads no
    file, so a user's folder that is not there yet is a known task that is not available."""
    return all(_known_name(p) for p in joint.parts_of(name))


def dataset_info(name: str) -> DatasetInfo:
    """Metadata only, no file read: grids are validated with this before any data exists (a family's name
    lists its folder under the default data root, and raises DatasetMissing when there is none)."""
    return _entry(name).info


def part_infos(name: str) -> list[DatasetInfo]:
    """The tasks a joint task is made of (a single task: itself)."""
    return [dataset_info(p) for p in joint.parts_of(name)]


def dataset_available(name: str, data_root: str | Path | None = None) -> bool:
    """Whether `load_task(name, data_root=...)` would find its files (checks paths only)."""
    try:
        return _entry(name, data_root).available(resolve_root(data_root))
    except DatasetMissing:  # a family's folder that is not there
        return False


def needs_download(name: str) -> bool:
    """Whether `name` is read from files that `prepare` fetches (False: bundled or generated)."""
    if any(family_of(p) for p in joint.parts_of(name)):
        return True  # a family's files come from outside (a user's folder), never from this package
    return _entry(name).prepare is not None


def prepare(name: str, data_root: str | Path) -> Path:
    """Login-node step: fetch `name` into `data_root` (needs internet unless already there); returns its folder."""
    entry, root = _entry(name, data_root), resolve_root(data_root)
    if entry.prepare is None:
        print(f"{name}: nothing to prepare ({entry.info.source})", file=sys.stderr)
        return root
    return entry.prepare(root)


def _named(info: DatasetInfo, data: SourceData) -> DatasetInfo:
    """`info` with the class names the loader read from the files, when it read any."""
    if not data.class_names:
        return info
    if len(data.class_names) != info.num_classes:
        raise ValueError(f"{info.name}: the files name {len(data.class_names)} classes, expected "
                         f"{info.num_classes}; an incomplete or foreign download? re-run `reprogbench prepare`")
    return replace(info, class_names=tuple(data.class_names))


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
    Class names the loader read from the files (`SourceData.class_names`) are in the returned `info`.
    """
    if joint.is_joint(name):  # each part split as it is alone, then side by side
        return joint.combine(dataset_info(name), [
            load_task(p, data_root=data_root, split_seed=split_seed, val_fraction=val_fraction,
                      test_fraction=test_fraction, max_train=max_train, image_size=image_size)
            for p in joint.parts_of(name)])
    entry = _entry(name, data_root)
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
    return TaskData(_named(entry.info, data), train, val, test, split)
