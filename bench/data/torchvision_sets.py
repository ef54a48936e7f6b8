"""Array-backed datasets read from disk by torchvision's own readers (never downloaded here): MNIST,
Fashion-MNIST, CIFAR-10/100, SVHN (.mat files) and STL-10 (binary files), each with its official train/test split.

Class names come from torchvision: a class attribute where it has one (MNIST's, Fashion-MNIST's), else what its
reader reads from the files at load (CIFAR's meta file, STL-10's class_names.txt); SVHN's classes are its digits.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torchvision import datasets as tvd

from .registry import register_dataset
from .roots import debian_fashion_mnist_dir, has_gz_files, unpack_gz_files
from .types import DatasetInfo, DatasetMissing, ImageSet, SourceData, readable


# torchvision checks the md5 of every CIFAR file each time a dataset object is built (re-hashing ~180 MB per
# load) and rejects anything but the official bytes, which rules out small test fixtures in the same format.
# `prepare` downloads with the stock classes, which verify the md5s once; for reading, md5=None makes
# torchvision's own `check_integrity` test only that each file exists.
class _CIFAR10Files(tvd.CIFAR10):
    train_list: ClassVar[list] = [[name, None] for name, _ in tvd.CIFAR10.train_list]
    test_list: ClassVar[list] = [[name, None] for name, _ in tvd.CIFAR10.test_list]
    meta: ClassVar[dict] = {**tvd.CIFAR10.meta, "md5": None}


class _CIFAR100Files(tvd.CIFAR100):
    train_list: ClassVar[list] = [[name, None] for name, _ in tvd.CIFAR100.train_list]
    test_list: ClassVar[list] = [[name, None] for name, _ in tvd.CIFAR100.test_list]
    meta: ClassVar[dict] = {**tvd.CIFAR100.meta, "md5": None}


class _SVHNFiles(tvd.SVHN):
    split_list: ClassVar[dict] = {split: [url, name, None] for split, (url, name, _) in tvd.SVHN.split_list.items()}


class _STL10Files(tvd.STL10):
    # Only the labelled files: unlabeled_X.bin (2.6 GB, never read here) may be deleted to save space.
    train_list: ClassVar[list] = [[name, None] for name, _ in tvd.STL10.train_list if not name.startswith("unlab")]
    test_list: ClassVar[list] = [[name, None] for name, _ in tvd.STL10.test_list]


def _idx_files(cls: type[tvd.MNIST]) -> tuple[str, ...]:
    return tuple(os.path.splitext(name)[0] for name, _ in cls.resources)


def _cifar_files(cls: type[tvd.CIFAR10]) -> tuple[str, ...]:
    return tuple(name for name, _ in cls.train_list + cls.test_list) + (cls.meta["filename"],)


def _image_set(ds: Any, layout: str) -> ImageSet:
    # `.data` whole, never per-sample `__getitem__` (PIL round trips would take seconds for MNIST).
    images = torch.as_tensor(ds.data)
    images = {"NHW": lambda: images[:, None], "NHWC": lambda: images.permute(0, 3, 1, 2), "NCHW": lambda: images}[
        layout]()
    labels = ds.targets if hasattr(ds, "targets") else ds.labels  # SVHN and STL-10 call them labels
    return ImageSet(images.contiguous(), torch.as_tensor(labels, dtype=torch.int64))


@dataclass(frozen=True)
class TorchvisionSource:
    name: str  # registry name, for messages and the prepare command
    reader: type  # reads files with download=False
    downloader: type  # stock torchvision class: downloads and verifies md5s
    folder: str  # where the reader looks, relative to the data root
    files: tuple[str, ...]  # what must be in that folder
    layout: str = "NHW"  # of the reader's `.data`: "NHW" (IDX), "NHWC" (CIFAR) or "NCHW" (SVHN, STL-10)
    splits: tuple[dict, dict] = ({"train": True}, {"train": False})  # the reader's arguments for train, test
    subdir: str = ""  # the reader's root under the data root (SVHN keeps its files directly in its root)
    debian_dir: Callable[[], Path] | None = None  # a Debian package that may ship the files gzipped

    def _dir(self, root: Path) -> Path:
        return root / self.folder

    def available(self, root: Path) -> bool:
        on_disk = all((self._dir(root) / f).is_file() for f in self.files)
        return on_disk or (self.debian_dir is not None and has_gz_files(self.debian_dir(), self.files))

    def _missing(self, root: Path) -> DatasetMissing:
        looked = [str(self._dir(root))]
        fix = f"run `reprogbench prepare {self.name} --data-root {root}` on a machine with internet"
        if self.debian_dir is not None:
            looked.append(str(self.debian_dir()))
            fix = "`apt install dataset-fashion-mnist`, or " + fix
        return DatasetMissing(self.name, looked, fix)

    def load(self, root: Path) -> SourceData:
        # Checked here, before torchvision, whose own error advises download=True (wrong on an offline node).
        on_disk = all((self._dir(root) / f).is_file() for f in self.files)
        unpacked = not on_disk and self.debian_dir is not None and unpack_gz_files(
            self.debian_dir(), self.files, self._dir(root)
        )
        if not (on_disk or unpacked):
            raise self._missing(root)
        train, test = (self.reader(str(root / self.subdir), **split, download=False) for split in self.splits)
        return SourceData(train=_image_set(train, self.layout), test=_image_set(test, self.layout),
                          class_names=readable(getattr(train, "classes", ())))

    def prepare(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        if self.debian_dir is not None:
            unpack_gz_files(self.debian_dir(), self.files, self._dir(root))  # no network needed when it works
        for split in self.splits:
            self.downloader(str(root / self.subdir), **split, download=True)  # a no-op when the files are there
        return self._dir(root)


MNIST = TorchvisionSource("mnist", tvd.MNIST, tvd.MNIST, "MNIST/raw", _idx_files(tvd.MNIST))
FASHION_MNIST = TorchvisionSource(
    "fashion_mnist", tvd.FashionMNIST, tvd.FashionMNIST, "FashionMNIST/raw", _idx_files(tvd.FashionMNIST),
    debian_dir=debian_fashion_mnist_dir,
)
CIFAR10 = TorchvisionSource(
    "cifar10", _CIFAR10Files, tvd.CIFAR10, tvd.CIFAR10.base_folder, _cifar_files(tvd.CIFAR10), layout="NHWC"
)
CIFAR100 = TorchvisionSource(
    "cifar100", _CIFAR100Files, tvd.CIFAR100, tvd.CIFAR100.base_folder, _cifar_files(tvd.CIFAR100), layout="NHWC"
)
SVHN = TorchvisionSource(
    "svhn", _SVHNFiles, tvd.SVHN, "svhn", tuple(tvd.SVHN.split_list[s][1] for s in ("train", "test")),
    layout="NCHW", splits=({"split": "train"}, {"split": "test"}), subdir="svhn",
)
STL10 = TorchvisionSource(
    "stl10", _STL10Files, tvd.STL10, tvd.STL10.base_folder,
    tuple(name for name, _ in _STL10Files.train_list + _STL10Files.test_list) + (tvd.STL10.class_names_file,),
    layout="NCHW", splits=({"split": "train"}, {"split": "test"}),
)
DIGIT_NAMES = tuple(str(d) for d in range(10))  # SVHN's labels are the digits themselves (10 read as 0)
# (source, classes, channels, size, where the files come from, class names known before any file is read);
# every one has an official train/test split (the older entries' source lines predate saying so, and are kept
# as they are because recorded results carry them)
for _src, _k, _channels, _size, _where, _names in (
    (MNIST, 10, 1, 28, "torchvision MNIST (IDX files)", tuple(tvd.MNIST.classes)),
    (FASHION_MNIST, 10, 1, 28, "torchvision FashionMNIST (IDX files; Debian dataset-fashion-mnist)",
     tuple(tvd.FashionMNIST.classes)),
    (CIFAR10, 10, 3, 32, "torchvision CIFAR10 (python pickle batches)", ()),  # names: read at load
    (CIFAR100, 100, 3, 32, "torchvision CIFAR100 (python pickle, fine labels)", ()),
    (SVHN, 10, 3, 32, "torchvision SVHN (cropped digits .mat), official train/test (extra not used)", DIGIT_NAMES),
    (STL10, 10, 3, 96, "torchvision STL10 (binary files), official train (5,000)/test, no folds, no unlabeled",
     ()),
):
    register_dataset(DatasetInfo(_src.name, _k, _channels, _size, _where, class_names=_names),
                     available=_src.available, prepare=_src.prepare)(_src.load)
