"""MNIST, Fashion-MNIST, CIFAR-10/100 read from disk by torchvision's own readers (never downloaded here)."""
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
from .types import DatasetInfo, DatasetMissing, ImageSet, SourceData


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


def _idx_files(cls: type[tvd.MNIST]) -> tuple[str, ...]:
    return tuple(os.path.splitext(name)[0] for name, _ in cls.resources)


def _cifar_files(cls: type[tvd.CIFAR10]) -> tuple[str, ...]:
    return tuple(name for name, _ in cls.train_list + cls.test_list) + (cls.meta["filename"],)


def _image_set(ds: Any) -> ImageSet:
    # `.data` whole, never per-sample `__getitem__` (PIL round trips would take seconds for MNIST).
    images = torch.as_tensor(ds.data)
    images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2)  # IDX: NHW; CIFAR: NHWC
    return ImageSet(images.contiguous(), torch.as_tensor(ds.targets, dtype=torch.int64))


@dataclass(frozen=True)
class TorchvisionSource:
    name: str  # registry name, for messages and the prepare command
    reader: type  # reads files with download=False
    downloader: type  # stock torchvision class: downloads and verifies md5s
    folder: str  # where the reader looks, relative to the data root
    files: tuple[str, ...]  # what must be in that folder
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
        return SourceData(
            train=_image_set(self.reader(str(root), train=True, download=False)),
            test=_image_set(self.reader(str(root), train=False, download=False)),
        )

    def prepare(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        if self.debian_dir is not None:
            unpack_gz_files(self.debian_dir(), self.files, self._dir(root))  # no network needed when it works
        for train in (True, False):
            self.downloader(str(root), train=train, download=True)  # a no-op when the files are there
        return self._dir(root)


MNIST = TorchvisionSource("mnist", tvd.MNIST, tvd.MNIST, "MNIST/raw", _idx_files(tvd.MNIST))
FASHION_MNIST = TorchvisionSource(
    "fashion_mnist", tvd.FashionMNIST, tvd.FashionMNIST, "FashionMNIST/raw", _idx_files(tvd.FashionMNIST),
    debian_dir=debian_fashion_mnist_dir,
)
CIFAR10 = TorchvisionSource(
    "cifar10", _CIFAR10Files, tvd.CIFAR10, tvd.CIFAR10.base_folder, _cifar_files(tvd.CIFAR10)
)
CIFAR100 = TorchvisionSource(
    "cifar100", _CIFAR100Files, tvd.CIFAR100, tvd.CIFAR100.base_folder, _cifar_files(tvd.CIFAR100)
)
# (source, classes, channels, size, where the files come from)
for _src, *_info in ((MNIST, 10, 1, 28, "torchvision MNIST (IDX files)"),
                     (FASHION_MNIST, 10, 1, 28, "torchvision FashionMNIST (IDX files; Debian dataset-fashion-mnist)"),
                     (CIFAR10, 10, 3, 32, "torchvision CIFAR10 (python pickle batches)"),
                     (CIFAR100, 100, 3, 32, "torchvision CIFAR100 (python pickle, fine labels)")):
    register_dataset(DatasetInfo(_src.name, *_info), available=_src.available, prepare=_src.prepare)(_src.load)
