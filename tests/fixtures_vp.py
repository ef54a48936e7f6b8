"""Small files in the exact on-disk layouts torchvision's visual-prompting datasets read: Food-101, Flowers-102,
DTD, GTSRB, Oxford-IIIT Pet, EuroSAT (encoded images plus their json/.mat/txt/csv split files), SVHN (.mat) and
STL-10 (binary files).

Each encoded image is one flat colour that says where it came from and survives JPEG: red = 0 for the official
train split, 96 for val, 255 for test; green = its label. Every class gets `per_class` images in each split.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fixtures_data import Written, _images
from PIL import Image
from scipy.io import savemat

RED = {"train": 0, "val": 96, "trainval": 0, "test": 255}


@dataclass
class WrittenFiles:
    """What an encoded-image fixture wrote, in torchvision's listing order: paths relative to the data root."""

    files: dict[str, list[str]] = field(default_factory=dict)  # split -> files
    labels: dict[str, list[int]] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)  # the names the loader should report, in label order

    def add(self, split: str, path: str, label: int) -> None:
        self.files.setdefault(split, []).append(path)
        self.labels.setdefault(split, []).append(label)

    def pool(self, *splits: str) -> tuple[list[str], list[int]]:
        return sum((self.files[s] for s in splits), []), sum((self.labels[s] for s in splits), [])


def write_image(path: Path, split: str, label: int, fmt: str = "JPEG") -> None:
    """A flat-colour image of a small size that varies with the label (the loaders resize it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = (16 + 8 * (label % 3), 16 + 8 * (label % 2))
    Image.new("RGB", size, (RED[split], label, 0)).save(path, format=fmt, quality=95)


def write_food101(root: Path, k: int = 101, per_class: int = 1) -> WrittenFiles:
    """`food-101/images/<class>/<id>.jpg` and `food-101/meta/{train,test}.json` (class -> "class/id" list)."""
    base, out = Path(root) / "food-101", WrittenFiles()
    names = [f"dish_{i:03d}" for i in range(k)]
    out.classes = [n.replace("_", " ") for n in names]
    for split, n in (("train", 2 * per_class), ("test", per_class)):
        meta = {}
        for label in reversed(range(k)):  # json order is not sorted order: labels follow the sorted names
            ids = [f"{names[label]}/{1000 * (split == 'test') + j}" for j in range(n)]
            meta[names[label]] = ids
            for rel in ids:
                write_image(base / "images" / f"{rel}.jpg", split, label)
                out.add(split, f"food-101/images/{rel}.jpg", label)
        (base / "meta").mkdir(parents=True, exist_ok=True)
        (base / "meta" / f"{split}.json").write_text(json.dumps(meta))
    return out


def write_flowers102(root: Path, k: int = 102, per_class: int = 1, seed: int = 0) -> WrittenFiles:
    """`flowers-102/jpg/image_NNNNN.jpg`, `imagelabels.mat` (labels 1..k by image id) and `setid.mat`."""
    base, out, rng = Path(root) / "flowers-102", WrittenFiles(), np.random.default_rng(seed)
    splits = [s for s in ("train", "val", "test") for _ in range(k * per_class)]
    labels = [label for _ in range(3) for label in range(k) for _ in range(per_class)]
    ids = rng.permutation(len(labels)) + 1  # image ids 1..N, splits interleaved as in the real files
    by_split = {"trnid": [], "valid": [], "tstid": []}
    for split, label, image_id in zip(splits, labels, ids, strict=True):
        write_image(base / "jpg" / f"image_{image_id:05d}.jpg", split, label)
        by_split[{"train": "trnid", "val": "valid", "test": "tstid"}[split]].append(int(image_id))
    image_labels = np.zeros(len(labels), dtype=np.uint8)
    image_labels[ids - 1] = np.array(labels) + 1
    savemat(base / "imagelabels.mat", {"labels": image_labels[None, :]})
    savemat(base / "setid.mat", {key: np.array(v, dtype=np.uint16)[None, :] for key, v in by_split.items()})
    label_of = dict(zip(ids.tolist(), labels, strict=True))
    for key, split in (("trnid", "train"), ("valid", "val"), ("tstid", "test")):
        for image_id in by_split[key]:
            out.add(split, f"flowers-102/jpg/image_{image_id:05d}.jpg", label_of[image_id])
    return out


def write_dtd(root: Path, k: int = 47, per_class: int = 1, partition: int = 1) -> WrittenFiles:
    """`dtd/dtd/images/<class>/<class>_NNNN.jpg` and `dtd/dtd/labels/{train,val,test}<partition>.txt`."""
    base, out = Path(root) / "dtd" / "dtd", WrittenFiles()
    out.classes = [f"texture{i:02d}" for i in range(k)]
    (base / "labels").mkdir(parents=True, exist_ok=True)
    number = 0
    for split in ("train", "val", "test"):
        lines = []
        for label in reversed(range(k)):  # file order is not label order
            for _ in range(per_class):
                number += 1
                rel = f"{out.classes[label]}/{out.classes[label]}_{number:04d}.jpg"
                write_image(base / "images" / rel, split, label)
                lines.append(rel)
                out.add(split, f"dtd/dtd/images/{rel}", label)
        (base / "labels" / f"{split}{partition}.txt").write_text("\n".join(lines) + "\n")
    return out


def write_gtsrb(root: Path, k: int = 43, per_class: int = 1) -> WrittenFiles:
    """`gtsrb/GTSRB/Training/<NNNNN>/*.ppm` (+ each folder's GT csv), `gtsrb/GTSRB/Final_Test/Images/*.ppm` and
    `gtsrb/GT-final_test.csv` (';'-separated, ClassId last)."""
    base, out = Path(root) / "gtsrb", WrittenFiles()
    for label in range(k):
        folder = base / "GTSRB" / "Training" / f"{label:05d}"
        for j in range(2 * per_class):
            write_image(folder / f"00000_{j:05d}.ppm", "train", label, "PPM")
            out.add("train", f"gtsrb/GTSRB/Training/{label:05d}/00000_{j:05d}.ppm", label)
        (folder / f"GT-{label:05d}.csv").write_text("Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n")
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for n, label in enumerate(label for _ in range(per_class) for label in reversed(range(k))):
        write_image(base / "GTSRB" / "Final_Test" / "Images" / f"{n:05d}.ppm", "test", label, "PPM")
        rows.append(f"{n:05d}.ppm;16;16;1;1;15;15;{label}")
        out.add("test", f"gtsrb/GTSRB/Final_Test/Images/{n:05d}.ppm", label)
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    return out


def write_oxford_pets(root: Path, k: int = 37, per_class: int = 1) -> WrittenFiles:
    """`oxford-iiit-pet/images/<Breed>_<n>.jpg` (cats capitalised, dogs not) and annotations/{trainval,test}.txt
    ("<image id> <class id> <species> <breed id>", ids from 1)."""
    base, out = Path(root) / "oxford-iiit-pet", WrittenFiles()
    breeds = [f"Cat{i:02d}" if i < k // 3 else f"dog_{i:02d}" for i in range(k)]
    out.classes = [" ".join(part.title() for part in b.split("_")) for b in breeds]
    (base / "annotations").mkdir(parents=True, exist_ok=True)
    for split in ("trainval", "test"):
        lines = []
        for j in range(2 * per_class if split == "trainval" else per_class):
            for label, breed in enumerate(breeds):
                image_id = f"{breed}_{j + 1 + 1000 * (split == 'test')}"
                write_image(base / "images" / f"{image_id}.jpg", split, label)
                cat = breed[0].isupper()
                lines.append(f"{image_id} {label + 1} {1 if cat else 2} {label + 1 if cat else label + 1 - k // 3}")
                out.add(split, f"oxford-iiit-pet/images/{image_id}.jpg", label)
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return out


def write_eurosat(root: Path, k: int = 10, per_class: int = 5) -> WrittenFiles:
    """`eurosat/2750/<Class>/<Class>_<n>.jpg`, listed as ImageFolder does: sorted classes, sorted names."""
    base, out = Path(root) / "eurosat" / "2750", WrittenFiles()
    out.classes = [f"Land{i:02d}" for i in range(k)]
    for label, name in enumerate(out.classes):
        for n in sorted(f"{name}_{j + 1}.jpg" for j in range(per_class)):
            write_image(base / name / n, "train", label)
            out.add("train", f"eurosat/2750/{name}/{n}", label)
    return out


def write_svhn(root: Path, n_train: int = 60, n_test: int = 20, seed: int = 7) -> Written:
    """`svhn/{train,test}_32x32.mat`: X (32, 32, 3, N) uint8 and y (N, 1) with the digit 0 stored as 10."""
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = _images(n, 10, 3, 32, split == "test", seed)
        (Path(root) / "svhn").mkdir(parents=True, exist_ok=True)
        y = np.where(labels == 0, 10, labels).astype(np.uint8)[:, None]
        savemat(Path(root) / "svhn" / f"{split}_32x32.mat", {"X": images.transpose(2, 3, 1, 0), "y": y})
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
    return Written(**out)


STL10_NAMES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def write_stl10(root: Path, n_train: int = 30, n_test: int = 20, seed: int = 8) -> Written:
    """`stl10_binary/{train,test}_{X,y}.bin` (images column-major, labels 1..10 as uint8) and class_names.txt."""
    folder, out = Path(root) / "stl10_binary", {}
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = _images(n, 10, 3, 96, split == "test", seed)
        (folder / f"{split}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())  # as the binaries are
        (folder / f"{split}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
    (folder / "class_names.txt").write_text("\n".join(STL10_NAMES) + "\n")
    return Written(**out)


ENCODED_WRITERS = {"food101": write_food101, "flowers102": write_flowers102, "dtd": write_dtd,
                   "gtsrb": write_gtsrb, "oxford_pets": write_oxford_pets, "eurosat": write_eurosat}


def write_vp_sets(root: Path) -> dict[str, WrittenFiles | Written]:
    """Every visual-prompting dataset with every class present, under one data root."""
    written: dict[str, WrittenFiles | Written] = {n: w(root) for n, w in ENCODED_WRITERS.items()}
    written["svhn"], written["stl10"] = write_svhn(root), write_stl10(root)
    return written
