"""Small dataset files in the exact on-disk formats the real loaders read, so tests run the real reading code.

Every image carries its own identity in its first pixels: (0, 0, 0) = index // 256, (0, 0, 1) = index % 256,
(0, 0, 2) = label, (0, 0, 3) = 0 for the train file and 1 for the test file. A test can thus tell where a loaded
image came from, and all images are distinct.
"""
from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IDX_NAMES = {  # torchvision's names for the four IDX files
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


@dataclass
class Written:
    """What a fixture wrote: images as (N, C, H, W) uint8 and int64 labels, per official split."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def _images(
    n: int, num_classes: int, channels: int, size: int, is_test: bool, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + int(is_test))
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)  # every class, in a shuffled order
    images = rng.integers(0, 256, size=(n, channels, size, size), dtype=np.uint8)
    index = np.arange(n)
    images[:, 0, 0, 0] = index // 256
    images[:, 0, 0, 1] = index % 256
    images[:, 0, 0, 2] = labels
    images[:, 0, 0, 3] = int(is_test)
    return images, labels


def _write(path: Path, payload: bytes, gz: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_idx_files(dest: Path, n_train: int = 200, n_test: int = 50, gz: bool = False, seed: int = 0) -> Written:
    """The four MNIST-format IDX files (magic 2051 images / 2049 labels, big-endian sizes) in `dest`.

    gz=True writes `NAME.gz` instead, as the Debian package dataset-fashion-mnist ships them.
    """
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = _images(n, 10, 1, 28, split == "test", seed)
        image_header, label_header = struct.pack(">iiii", 2051, n, 28, 28), struct.pack(">ii", 2049, n)
        _write(Path(dest) / IDX_NAMES[split, "images"], image_header + images.tobytes(), gz)
        _write(Path(dest) / IDX_NAMES[split, "labels"], label_header + labels.astype(np.uint8).tobytes(), gz)
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
    return Written(**out)


def write_mnist_idx(
    root: Path, folder: str = "MNIST", n_train: int = 200, n_test: int = 50, gz: bool = False, seed: int = 0
) -> Written:
    """IDX files where torchvision's MNIST-style class `folder` reads them: `root/<folder>/raw/`."""
    return write_idx_files(Path(root) / folder / "raw", n_train, n_test, gz, seed)


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the official files are Python 2 pickles


def _cifar_batch(images: np.ndarray, labels: np.ndarray, label_key: str, name: str) -> dict:
    return {
        "batch_label": name,
        label_key: labels.tolist(),
        "data": images.reshape(len(images), 3 * 32 * 32),  # N x 3072 uint8: the R plane, then G, then B
        "filenames": [f"{name}_{i}.png" for i in range(len(images))],
    }


def write_cifar10(root: Path, n_per_batch: int = 20, seed: int = 0) -> Written:
    """`root/cifar-10-batches-py/`: data_batch_1..5, test_batch (n_per_batch each) and batches.meta."""
    folder = Path(root) / "cifar-10-batches-py"
    train_images, train_labels = _images(5 * n_per_batch, 10, 3, 32, False, seed)
    for b in range(5):
        part = slice(b * n_per_batch, (b + 1) * n_per_batch)
        batch = _cifar_batch(train_images[part], train_labels[part], "labels", f"batch {b + 1}")
        _pickle(folder / f"data_batch_{b + 1}", batch)
    test_images, test_labels = _images(n_per_batch, 10, 3, 32, True, seed)
    _pickle(folder / "test_batch", _cifar_batch(test_images, test_labels, "labels", "test"))
    names = [f"class{i}" for i in range(10)]
    _pickle(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": n_per_batch, "num_vis": 3072})
    return Written(train_images, train_labels, test_images, test_labels)


def write_cifar100(root: Path, n: int = 300, n_test: int = 100, seed: int = 0) -> Written:
    """`root/cifar-100-python/`: train, test (fine and coarse labels) and meta."""
    folder = Path(root) / "cifar-100-python"
    written = []
    for name, count in (("train", n), ("test", n_test)):
        images, labels = _images(count, 100, 3, 32, name == "test", seed)
        batch = _cifar_batch(images, labels, "fine_labels", name)
        batch["coarse_labels"] = (labels // 5).tolist()
        _pickle(folder / name, batch)
        written += [images, labels]
    fine, coarse = [f"fine{i}" for i in range(100)], [f"coarse{i}" for i in range(20)]
    _pickle(folder / "meta", {"fine_label_names": fine, "coarse_label_names": coarse})
    return Written(*written)


# --------------------------------------------------------------------------- Caltech: folders of JPEGs

CALTECH101_NAMES = ("Faces", "Faces_easy", "accordion", "car_side")  # sorted; "Faces" a prefix of another
THESIS_DROPPED_101 = ("Faces", "Faces_easy", "Motorbikes", "airplanes")  # + BACKGROUND_Google, never a class
CALTECH256_NAMES = ("ak47", "american-flag", "backpack", "baseball-bat")


@dataclass
class WrittenFolders:
    """What a Caltech fixture wrote: the class folders' parent, and the real classes' files in torchvision's order
    (class folders sorted, then file names sorted), as "<class folder>/<file name>" with their labels."""

    images_dir: Path
    classes: list[str]
    files: list[str]
    labels: list[int]


def write_jpeg(path: Path, seed: int, mode: str = "RGB", size: tuple[int, int] | None = None) -> None:
    """A JPEG of random pixels (so every file differs), `size` = (width, height) or a random small one."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size if size is not None else (int(rng.integers(10, 48)), int(rng.integers(10, 48)))
    bands = {"L": 1, "RGB": 3, "CMYK": 4}[mode]
    pixels = rng.integers(0, 256, size=(height, width, bands), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[:, :, 0] if bands == 1 else pixels, mode=mode).save(path, format="JPEG")


def _mode(label: int, number: int) -> str:
    # Not all Caltech JPEGs are RGB: one greyscale and one CMYK file in the first class.
    return {(0, 2): "L", (0, 3): "CMYK"}.get((label, number), "RGB")


def _class_files(folder: Path, names: list[str], label: int, seed: int) -> None:
    for number, name in enumerate(names, start=1):
        big = (300, 260) if (label, number) == (0, 1) else None  # one larger than 224: resizing shrinks it
        write_jpeg(folder / name, seed * 100_003 + label * 1_000 + number, _mode(label, number), big)


def write_caltech101(root: Path, counts: tuple[int, ...] = (3, 5, 4, 6), background: int = 3, seed: int = 0
                     ) -> WrittenFolders:
    """`root/caltech101/101_ObjectCategories/<class>/image_0001.jpg...`, plus BACKGROUND_Google (not a class)."""
    images_dir = Path(root) / "caltech101" / "101_ObjectCategories"
    if len(counts) <= 4:
        classes = list(CALTECH101_NAMES[: len(counts)])
    else:  # the four real folders caltech101_thesis drops come first (sorted, as torchvision lists them), then c000...
        classes = list(THESIS_DROPPED_101) + [f"c{i:03d}" for i in range(len(counts) - len(THESIS_DROPPED_101))]
    files, labels = [], []
    for label, (name, count) in enumerate(zip(classes, counts, strict=True)):
        names = [f"image_{n:04d}.jpg" for n in range(1, count + 1)]
        _class_files(images_dir / name, names, label, seed)
        files += [f"{name}/{f}" for f in names]
        labels += [label] * count
    _class_files(images_dir / "BACKGROUND_Google", [f"image_{n:04d}.jpg" for n in range(1, background + 1)],
                 len(counts), seed)
    return WrittenFolders(images_dir, classes, files, labels)


def write_caltech256(root: Path, counts: tuple[int, ...] = (22, 3, 5, 21), seed: int = 1, quirks: bool = True
                     ) -> WrittenFolders:
    """`root/caltech256/256_ObjectCategories/<NNN.name>/<NNN_XXXX.jpg>`, NNN = 001.. in folder order.

    With 257 classes the last folder is 257.clutter, as in the real data. quirks=True adds what torchvision skips
    in a class folder: a file not ending in .jpg and a sub-folder (the real 056.dog has one, `greg`).
    """
    images_dir = Path(root) / "caltech256" / "256_ObjectCategories"
    names = CALTECH256_NAMES if len(counts) <= 4 else [f"class{i:03d}" for i in range(len(counts))]
    classes = [f"{i + 1:03d}.{names[i]}" for i in range(len(counts))]
    if len(counts) == 257:
        classes[-1] = "257.clutter"
    files, labels = [], []
    for label, (name, count) in enumerate(zip(classes, counts, strict=True)):
        jpgs = [f"{label + 1:03d}_{n:04d}.jpg" for n in range(1, count + 1)]
        _class_files(images_dir / name, jpgs, label, seed)
        files += [f"{name}/{f}" for f in jpgs]
        labels += [label] * count
    if quirks:
        (images_dir / classes[-1] / "RENAME2").write_bytes(b"not an image")
        write_jpeg(images_dir / classes[-1] / "greg" / f"{len(counts):03d}_9999.jpg", seed)
    return WrittenFolders(images_dir, classes, files, labels)
