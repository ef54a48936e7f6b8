"""Tiny folder and split-file datasets in the exact layouts the loaders of bench/data/vp_extra.py,
user_downloads.py and folders.py read: PIL-written JPEGs (PNGs for FMoW), devkit .mat files written by scipy as
torchvision reads them, SUN397's ClassName.txt, CoOp's split json, HAM10000's and WILDS's metadata CSVs.

Each writer returns the truth the tests check against: per official part, the files (relative to the folder the
loader lists from) and their labels, in the order the loader must give them, and the class names.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fixtures_data import write_jpeg


@dataclass
class WrittenSplit:
    """What a fixture wrote, in loader order: `parts[name] = (files, labels)` for "pool" and, where the dataset
    has one, "test"; `folder` is what the files are relative to."""

    folder: Path
    classes: list[str]
    parts: dict[str, tuple[list[str], list[int]]] = field(default_factory=dict)


def readable(names: list[str]) -> list[str]:
    """The class names a loader gives for names read from files: underscores read as spaces."""
    return [n.replace("_", " ") for n in names]


def _seed(*parts: int) -> int:
    return int(np.ravel_multi_index(parts, [1000] * len(parts)) % (2**31))


def write_png(path: Path, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)).save(path, format="PNG")


# --------------------------------------------------------------------------- torchvision's StanfordCars and SUN397


def write_stanford_cars(root: Path, num_classes: int = 196, train_per_class: int = 2, test_per_class: int = 1
                        ) -> WrittenSplit:
    """`root/stanford_cars/`: cars_train/, cars_test/, devkit/cars_meta.mat, devkit/cars_train_annos.mat and
    cars_test_annos_withlabels.mat, the .mat `annotations` struct arrays with 1-based `class` as in the devkit."""
    from scipy.io import savemat

    base = Path(root) / "stanford_cars"
    classes = [f"Maker {c} Model {c} {2000 + c % 13}" for c in range(num_classes)]
    (base / "devkit").mkdir(parents=True, exist_ok=True)
    savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array(classes, dtype=object)[None, :]})
    written = WrittenSplit(base, classes)
    dtype = [("bbox_x1", "O"), ("bbox_y1", "O"), ("bbox_x2", "O"), ("bbox_y2", "O"), ("class", "O"), ("fname", "O")]
    for part, folder, mat, per_class in (("pool", "cars_train", "devkit/cars_train_annos.mat", train_per_class),
                                         ("test", "cars_test", "cars_test_annos_withlabels.mat", test_per_class)):
        # the devkit lists images by number, classes interleaved, not grouped
        labels = [c for _ in range(per_class) for c in range(num_classes)]
        names = [f"{i + 1:05d}.jpg" for i in range(len(labels))]
        rows = [(1, 1, 8, 8, label + 1, name) for name, label in zip(names, labels, strict=True)]
        records = np.array(rows, dtype=dtype)
        savemat(base / mat, {"annotations": records[None, :]})
        for i, name in enumerate(names):
            write_jpeg(base / folder / name, _seed(1, part == "test", i))
        written.parts[part] = ([f"{folder}/{n}" for n in names], labels)
    return written


def sun_classes(num_classes: int = 397) -> list[str]:
    """SUN397-like names, a few with a sub-folder (`apartment_building/outdoor`), sorted as ClassName.txt is."""
    names = [f"scene{c:03d}/outdoor" if c % 50 == 7 else f"scene{c:03d}" for c in range(num_classes)]
    return sorted(names)


def write_sun397(root: Path, num_classes: int = 397, per_class: int = 3, split: bool = False) -> WrittenSplit:
    """`root/SUN397/ClassName.txt` (`/s/scene000`) and `root/SUN397/s/<class>/sun_<id>.jpg`; with split=True also
    CoOp's `split_zhou_SUN397.json` in that folder: per class one train, one val and the rest test."""
    base, classes = Path(root) / "SUN397", sun_classes(num_classes)
    base.mkdir(parents=True, exist_ok=True)
    (base / "ClassName.txt").write_text("".join(f"/{c[0]}/{c}\n" for c in classes))
    items = []
    for label, name in enumerate(classes):
        for k in range(per_class):
            rel = f"{name[0]}/{name}/sun_{label:03d}{k:02d}{'zyx'[k % 3]}.jpg"
            write_jpeg(base / rel, _seed(2, label, k))
            items.append((rel, label, k))
    written = WrittenSplit(base, list(classes))
    if not split:
        ordered = sorted(items)
        written.parts["pool"] = ([f for f, _, _ in ordered], [y for _, y, _ in ordered])
        return written
    coop = {"train": [], "val": [], "test": []}
    for rel, label, k in items:
        coop["train" if k == 0 else "val" if k == 1 else "test"].append([rel, label, classes[label]])
    (base / "split_zhou_SUN397.json").write_text(json.dumps(coop))
    pool = coop["train"] + coop["val"]
    written.parts["pool"] = ([f for f, _, _ in pool], [y for _, y, _ in pool])
    written.parts["test"] = ([f for f, _, _ in coop["test"]], [y for _, y, _ in coop["test"]])
    return written


# --------------------------------------------------------------------------- user downloads: UCF-101, ISIC, FMoW


def write_ucf101(root: Path, num_classes: int = 101, per_class: int = 3) -> WrittenSplit:
    """`root/ucf101/UCF-101-midframes/<Class>/v_<Class>_gNN_c01.jpg` and CoOp's `split_zhou_UCF101.json`
    (per class: one train, one val, the rest test; labels are CoOp's, the class names its refined ones)."""
    base = Path(root) / "ucf101"
    classes = [f"Action_{c:03d}" for c in range(num_classes)]
    coop = {"train": [], "val": [], "test": []}
    for label, name in enumerate(classes):
        for k in range(per_class):
            rel = f"{name}/v_{name.replace('_', '')}_g{k + 8:02d}_c01.jpg"
            write_jpeg(base / "UCF-101-midframes" / rel, _seed(3, label, k))
            coop["train" if k == 0 else "val" if k == 1 else "test"].append([rel, label, name])
    (base / "split_zhou_UCF101.json").write_text(json.dumps(coop))
    written = WrittenSplit(base / "UCF-101-midframes", readable(classes))
    pool = coop["train"] + coop["val"]
    written.parts["pool"] = ([f for f, _, _ in pool], [y for _, y, _ in pool])
    written.parts["test"] = ([f for f, _, _ in coop["test"]], [y for _, y, _ in coop["test"]])
    return written


ISIC_CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]


def write_isic(root: Path, counts: dict[str, int] | None = None) -> WrittenSplit:
    """`root/isic/data/ISIC_<id>.jpg` + `root/isic/HAM10000_metadata.csv` (HAM10000's columns), rows in an order
    unlike the files'. The truth keeps every third nv image in sorted file order, as AutoVP does."""
    counts = counts or {c: 3 for c in ISIC_CLASSES} | {"nv": 7}
    base = Path(root) / "isic"
    rows, i = [], 0
    for dx, count in counts.items():
        for _ in range(count):
            # ids interleave the classes, so that sorted file order mixes them
            rows.append({"lesion_id": f"HAM_{i:07d}", "image_id": f"ISIC_{(i * 37) % 1000:07d}", "dx": dx,
                         "dx_type": "histo", "age": "50.0", "sex": "male", "localization": "back"})
            write_jpeg(base / "data" / f"{rows[-1]['image_id']}.jpg", _seed(4, i))
            i += 1
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "HAM10000_metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(reversed(rows))
    files, labels, nv = [], [], 0
    for row in sorted(rows, key=lambda r: r["image_id"]):
        if row["dx"] == "nv":
            nv += 1
            if (nv - 1) % 3:
                continue
        files.append(f"{row['image_id']}.jpg")
        labels.append(ISIC_CLASSES.index(row["dx"]))
    written = WrittenSplit(base / "data", ISIC_CLASSES)
    written.parts["pool"] = (files, labels)
    return written


FMOW_CATEGORIES = [f"site_kind_{c:02d}" if c % 3 else f"site-{c:02d}" for c in range(62)]  # `_` and `-`, as fMoW's


def write_fmow(root: Path, categories: list[str] = FMOW_CATEGORIES, per_class: int = 2) -> WrittenSplit:
    """`root/fmow_v1.1/rgb_metadata.csv` (WILDS's columns) and `images/rgb_img_<row>.png`. Per category:
    `per_class` train rows before 2013, one train row in 2014 (WILDS's OOD val, not train), one test row in 2017
    (the OOD test), one test row in 2012 (ID test, not used), and a `seq` row."""
    base = Path(root) / "fmow_v1.1"
    plan = [("train", "2011-05-04T10:32:17Z", "pool")] * per_class + [
        ("train", "2014-02-01T08:00:00Z", None), ("test", "2017-07-09T12:00:00Z", "test"),
        ("test", "2012-01-01T00:00:00Z", None), ("seq", "2017-01-01T00:00:00Z", None)]
    categories = sorted(categories)  # fMoW's label order
    rows, written = [], WrittenSplit(base / "images", readable(categories), {"pool": ([], []), "test": ([], [])})
    for label, category in enumerate(categories):
        for split, when, part in plan:
            row = len(rows)
            rows.append({"split": split, "img_filename": f"img_{row}.jpg", "category": category,
                         "country_code": "USA", "timestamp": when, "cloud_cover": "0"})
            write_png(base / "images" / f"rgb_img_{row}.png", _seed(5, row))
            if part is not None:
                written.parts[part][0].append(f"rgb_img_{row}.png")
                written.parts[part][1].append(label)
    # loader order is metadata order: rows were written class by class, so sort each part by row number
    for part, (files, labels) in written.parts.items():
        order = sorted(range(len(files)), key=lambda k: int(files[k][8:-4]))
        written.parts[part] = ([files[k] for k in order], [labels[k] for k in order])
    with open(base / "rgb_metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return written


def write_image_folder(base: Path, train: dict[str, int], test: dict[str, int] | None = None) -> WrittenSplit:
    """`base/train/<class>/<n>.jpg` (and `base/test/...`), the layout `folder:<name>` reads, plus a stray
    non-image file that ImageFolder skips."""
    classes = sorted(train)
    written = WrittenSplit(Path(base), readable(classes))
    for part, counts in (("pool", train), ("test", test)):
        if counts is None:
            continue
        sub = "train" if part == "pool" else "test"
        files, labels = [], []
        for name in sorted(counts):
            for k in range(counts[name]):
                label = classes.index(name) if name in classes else len(classes)  # a test-only class: an error
                write_jpeg(Path(base) / sub / name / f"{k:03d}.jpg", _seed(6, label, k, part == "test"))
                files.append(f"{name}/{k:03d}.jpg")
                labels.append(label)
        written.parts[part] = (files, labels)
    (Path(base) / "train" / classes[0] / "notes.txt").write_text("not an image")
    return written
