"""The data types every loader returns and every method consumes."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class DatasetInfo:
    """What a grid needs to know about a dataset before touching any file."""

    name: str  # registry name, e.g. "mnist_01"
    num_classes: int
    channels: int  # 1 or 3
    size: int  # native height == width in pixels
    source: str  # one line: where the data comes from
    parts: tuple[str, ...] = ()  # a joint task (bench.data.joint): the tasks it is made of, in class order
    # human-readable class names in label order (CLIP's zero-shot head builds its text prompts from them);
    # () when not known before the files are read: many loaders read them at load (`SourceData.class_names`)
    class_names: tuple[str, ...] = ()
    # True: neither the library nor the files name the classes (GTSRB): a cell that reads class names (the
    # `semantic` mapping) is skipped at expansion instead of failing when it starts
    unnamed: bool = False
    # images stored as encoded files of varying size (JPEG/PNG folders): decoded once at the size a cell needs
    # (bench.data.decode), `size` being the default decode size; False: arrays at their native `size`
    encoded: bool = False


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 (N, C, H, W), 0..255
    labels: torch.Tensor  # int64 (N,), 0..num_classes-1
    # Position of each sample in the set it was drawn from (the official train or test file, or the whole
    # dataset when there is no official test split; for class subsets, positions in the base dataset).
    # Kept so that a split can be audited and fingerprinted, and so that duplicate images (squares has many)
    # do not make disjointness unverifiable.
    source_index: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Cheap checks here catch a loader bug at its source instead of as a shape error deep in training.
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise TypeError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.ndim != 1:
            raise TypeError(f"labels must be int64 (N,), got {self.labels.dtype} {tuple(self.labels.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if self.source_index is None:
            self.source_index = torch.arange(len(self.labels))

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor) -> ImageSet:
        """The samples at `index` (positions in this set); provenance follows them."""
        assert self.source_index is not None
        return ImageSet(self.images[index], self.labels[index], self.source_index[index])


@dataclass
class TaskData:
    info: DatasetInfo
    train: ImageSet
    val: ImageSet
    test: ImageSet
    split: dict[str, Any]  # JSON-serialisable record of how the three sets were made


@dataclass
class ImageFiles:
    """Images still on disk as encoded files (JPEG, PNG, ...): what a folder-of-images loader lists without
    decoding one. `bench.data.decode.materialise` turns it into an `ImageSet` at the size a cell needs."""

    root: Path  # the files are relative to it
    files: list[str]
    labels: torch.Tensor  # int64 (N,)
    cache_key: str  # names the decoded cache beside the data: dataset and official split, e.g. "food101-train"
    source_index: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.labels.dtype != torch.int64 or self.labels.ndim != 1:
            raise TypeError(f"labels must be int64 (N,), got {self.labels.dtype} {tuple(self.labels.shape)}")
        if len(self.files) != len(self.labels):
            raise ValueError(f"{len(self.files)} files but {len(self.labels)} labels")
        if self.source_index is None:
            self.source_index = torch.arange(len(self.labels))

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class SourceData:
    """What a loader reads: the official train set, and the official test set when the dataset has one.

    Arrays (`ImageSet`), or encoded files (`ImageFiles`), which `load_task` decodes at the size asked for."""

    train: ImageSet | ImageFiles
    test: ImageSet | ImageFiles | None
    # Class names read from the files at load (CIFAR's meta file, Food-101's json, DTD's folders, ...), for
    # datasets whose names exist only there; `load_task` puts them into `TaskData.info`. (): the names, if any,
    # are the `DatasetInfo.class_names` declared with the entry.
    class_names: tuple[str, ...] = ()


def readable(names: Sequence[str]) -> tuple[str, ...]:
    """Class names as words: folder-style names (`apple_pie`, `maple_tree`) with underscores read as spaces."""
    return tuple(str(n).replace("_", " ") for n in names)


class DatasetMissing(FileNotFoundError):
    """A dataset whose files are not on this machine. The message is one line: what, where looked, the fix."""

    def __init__(self, dataset: str, looked_in: Sequence[str], fix: str) -> None:
        self.dataset, self.looked_in, self.fix = dataset, list(looked_in), fix
        # One positional argument only: OSError would read two as (errno, strerror) and reformat the message.
        super().__init__(f"dataset {dataset} not found; looked in {', '.join(self.looked_in)}; fix: {fix}")

    def __reduce__(self) -> tuple[Any, ...]:  # keep it picklable across worker processes
        return (type(self), (self.dataset, self.looked_in, self.fix))

    def __str__(self) -> str:
        return str(self.args[0])
