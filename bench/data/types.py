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

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    @property
    def nbytes(self) -> int:
        """What the set's images take as uint8, wherever they are."""
        c, h, w = self.sample_shape
        return len(self) * c * h * w

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        """The images at `index` (positions in this set) as one uint8 tensor, in that order."""
        rows, order = self.gather_sorted(index)
        if order is None:
            return rows
        out = torch.empty_like(rows)
        out[order] = rows
        return out

    def gather_sorted(self, index: torch.Tensor,
                      out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images at `index` in the order they are best read in, into `out` if given, and `order`:
        `batch[order] = rows` puts them back in the order asked for (None: they already are)."""
        return torch.index_select(self.images, 0, index, out=out), None


class ImageRows(ImageSet):
    """An `ImageSet` whose samples are rows of a larger array, typically memory-mapped (bench.data.cache): `take`
    narrows the rows and copies no image, so a split of a dataset larger than memory costs its index only.

    `images` materialises the rows (a copy in memory); the data path reads batches with `gather` instead.
    """

    def __init__(self, store: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor,
                 source_index: torch.Tensor | None = None):
        if store.dtype != torch.uint8 or store.ndim != 4:
            raise TypeError(f"images must be uint8 (N, C, H, W), got {store.dtype} {tuple(store.shape)}")
        if len(rows) != len(labels):
            raise ValueError(f"{len(rows)} rows but {len(labels)} labels")
        self.store, self.rows = store, rows.to(torch.int64)
        self.labels = labels
        self.source_index = torch.arange(len(labels)) if source_index is None else source_index
        if self.labels.dtype != torch.int64 or self.labels.ndim != 1:
            raise TypeError(f"labels must be int64 (N,), got {self.labels.dtype} {tuple(self.labels.shape)}")

    @classmethod
    def whole(cls, store: torch.Tensor, labels: torch.Tensor, source_index: torch.Tensor | None = None) -> ImageRows:
        return cls(store, torch.arange(len(store)), labels, source_index)

    @property
    def images(self) -> torch.Tensor:  # type: ignore[override]
        return self.gather(torch.arange(len(self)))

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return tuple(self.store.shape[1:])

    def take(self, index: torch.Tensor) -> ImageRows:
        assert self.source_index is not None
        return ImageRows(self.store, self.rows[index], self.labels[index], self.source_index[index])

    def gather_sorted(self, index: torch.Tensor,
                      out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rows read in file order: a mapped file is read forwards, not hopping back and forth."""
        rows, order = self.rows[index].sort()
        return torch.index_select(self.store, 0, rows, out=out), order

    def __repr__(self) -> str:
        return f"ImageRows({len(self)} of {len(self.store)} rows, {self.sample_shape})"


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

    def take(self, index: torch.Tensor) -> ImageFiles:
        """The files at `index` (a class subset): its own cache, the digest being of its own file list."""
        assert self.source_index is not None
        picked = torch.arange(len(self))[index].tolist()
        return ImageFiles(self.root, [self.files[i] for i in picked], self.labels[index], self.cache_key,
                          self.source_index[index])


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
