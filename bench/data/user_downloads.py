"""UCF-101 (CoOp's middle frames), ISIC 2018 task 3 (HAM10000) and FMoW, laid out as the papers that use them for
visual prompting read them. Nothing here can be fetched (a login, a licence, or 50 GB from a page without a stable
URL): `prepare` says in one line where to get each and how to lay it out, and exits non-zero; a grid lists their
cells as not prepared.

- `ucf101`: CoOp's DATASETS.md layout, `ucf101/UCF-101-midframes/<class>/<video>.jpg` and
  `ucf101/split_zhou_UCF101.json`; CoOp's train+val is the pool, its test the official test; class names from
  the split file (underscores read as spaces, as for every name read from files).
- `isic`: AutoVP's (IBM/AutoVP, auto_vp/datasets.py `Melanoma`): HAM10000 from the Harvard Dataverse, every
  image in `isic/data/`, labels from the `dx` column of `isic/HAM10000_metadata.csv`, classes (the `dx` codes)
  in sorted order;
  as AutoVP does, only every third `nv` image (in sorted file order) is kept, to tame the 67% majority class.
  There is no official test: the seeded stratified split.
- `fmow`: AutoVP reads it through WILDS (`get_dataset("fmow")`), so WILDS's layout `fmow_v1.1/images/
  rgb_img_<row>.png` + `fmow_v1.1/rgb_metadata.csv`, and WILDS's official split: train = `split == train` before
  2013, test = the out-of-distribution test (`split == test` from 2016 on), as AutoVP trains and tests.
"""
from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from .listing import BadListing, check_class_count, check_files_exist, image_files, read_split_file, split_class_names
from .registry import register_dataset
from .types import DatasetInfo, DatasetMissing, SourceData, readable

SIZE = 224  # default decode size: the ImageNet backbones' input resolution


def _missing(name: str, root: Path, where: Path, how: str) -> DatasetMissing:
    return DatasetMissing(name, [str(root / where)], f"{how}; `reprogbench prepare {name}` cannot fetch it")


def _not_preparable(name: str, where: Path, how: str, available: Callable[[Path], bool]) -> Callable[[Path], Path]:
    """A `prepare` that fails in one line saying where the files come from and where they go (unless there)."""

    def prepare(root: Path) -> Path:
        if not available(root):
            raise _missing(name, root, where, how)
        return root / where

    return prepare


# --------------------------------------------------------------------------- UCF-101, CoOp's middle frames

UCF, UCF_CLASSES = Path("ucf101"), 101
UCF_FRAMES, UCF_SPLIT = UCF / "UCF-101-midframes", UCF / "split_zhou_UCF101.json"
UCF_HOW = ("download UCF-101-midframes.zip (CoOp's DATASETS.md: https://github.com/KaiyangZhou/CoOp/blob/main/"
           "DATASETS.md#ucf101) and split_zhou_UCF101.json, and put them at ucf101/UCF-101-midframes/<class>/"
           "<video>.jpg and ucf101/split_zhou_UCF101.json under the data root")


def ucf_available(root: Path) -> bool:
    return (root / UCF_SPLIT).is_file() and (root / UCF_FRAMES).is_dir()


@register_dataset(
    DatasetInfo("ucf101", UCF_CLASSES, 3, SIZE, "UCF-101 middle frames with CoOp's split_zhou_UCF101.json (train+val "
                "pool, official test)", encoded=True),
    available=ucf_available, prepare=_not_preparable("ucf101", UCF, UCF_HOW, ucf_available))
def ucf101(root: Path) -> SourceData:
    if not ucf_available(root):
        raise _missing("ucf101", root, UCF, UCF_HOW)
    split = read_split_file(root / UCF_SPLIT)
    pool, test = split["train"] + split["val"], split["test"]
    frames = root / UCF_FRAMES
    check_files_exist(frames, [f for f, _, _ in pool + test], "ucf101")
    return SourceData(image_files(frames, [f for f, _, _ in pool], [y for _, y, _ in pool], "ucf101-coop-trainval"),
                      image_files(frames, [f for f, _, _ in test], [y for _, y, _ in test], "ucf101-coop-test"),
                      class_names=readable(check_class_count("ucf101", split_class_names(split, root / UCF_SPLIT),
                                                             UCF_CLASSES, root / UCF_SPLIT)))


# --------------------------------------------------------------------------- ISIC 2018 task 3 (HAM10000), as AutoVP

ISIC = Path("isic")
ISIC_IMAGES, ISIC_CSV = ISIC / "data", ISIC / "HAM10000_metadata.csv"
ISIC_CLASSES = 7  # HAM10000's diagnoses (`dx`): akiec bcc bkl df mel nv vasc
ISIC_KEEP_NV = 3  # AutoVP keeps every third nv image
ISIC_HOW = ("download HAM10000 from https://doi.org/10.7910/DVN/DBW86T (HAM10000_images_part_1.zip, "
            "HAM10000_images_part_2.zip, HAM10000_metadata), unzip both parts into isic/data/ and put "
            "HAM10000_metadata.csv at isic/HAM10000_metadata.csv under the data root")


def isic_available(root: Path) -> bool:
    return (root / ISIC_CSV).is_file() and (root / ISIC_IMAGES).is_dir()


def _isic_diagnoses(path: Path) -> tuple[dict[str, str], list[str]]:
    """image id -> diagnosis, and the diagnoses sorted: AutoVP's label order (its `lab_dic` is alphabetical)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"image_id", "dx"} <= set(rows[0]):
        raise BadListing(f"{path}: expected HAM10000's metadata CSV with columns image_id and dx")
    classes = check_class_count("isic", sorted({r["dx"] for r in rows}), ISIC_CLASSES, path)
    return {r["image_id"]: r["dx"] for r in rows}, list(classes)


@register_dataset(
    DatasetInfo("isic", ISIC_CLASSES, 3, SIZE, "ISIC 2018 task 3 / HAM10000 as AutoVP reads it (dx labels, "
                "1 in 3 nv kept; seeded stratified)", encoded=True),
    available=isic_available, prepare=_not_preparable("isic", ISIC, ISIC_HOW, isic_available))
def isic(root: Path) -> SourceData:
    if not isic_available(root):
        raise _missing("isic", root, ISIC, ISIC_HOW)
    diagnosis, classes = _isic_diagnoses(root / ISIC_CSV)
    images = sorted(p.name for p in (root / ISIC_IMAGES).iterdir() if p.suffix.lower() == ".jpg")
    unlisted = [f for f in images if Path(f).stem not in diagnosis]
    if unlisted:
        raise BadListing(f"isic: {len(unlisted)} image(s) in {root / ISIC_IMAGES} have no row in {root / ISIC_CSV} "
                         f"(first: {unlisted[0]})")
    if len(images) < len(diagnosis):
        print(f"reprogbench: warning: isic: {len(images)} of the {len(diagnosis)} images in {root / ISIC_CSV} are "
              f"in {root / ISIC_IMAGES} (incomplete download?)", file=sys.stderr)
    files, labels, nv_seen = [], [], 0
    for name in images:
        dx = diagnosis[Path(name).stem]
        if dx == "nv":
            nv_seen += 1
            if (nv_seen - 1) % ISIC_KEEP_NV:
                continue
        files.append(name)
        labels.append(classes.index(dx))
    return SourceData(image_files(root / ISIC_IMAGES, files, labels, "isic-autovp"), None,
                      class_names=readable(classes))


# --------------------------------------------------------------------------- FMoW, WILDS's layout and split

FMOW = Path("fmow_v1.1")
FMOW_CSV, FMOW_IMAGES = FMOW / "rgb_metadata.csv", FMOW / "images"
# WILDS's `categories` (wilds/datasets/fmow_dataset.py), the label order, are the 62 categories sorted
FMOW_CLASSES = 62
# WILDS's official scheme, time_after_2016: test (OOD) from 2016 on; train before 2013 (2013-15 is OOD val)
FMOW_TEST_FROM = datetime(2016, 1, 1, tzinfo=timezone.utc)
FMOW_TRAIN_BEFORE = datetime(2013, 1, 1, tzinfo=timezone.utc)
FMOW_HOW = ("fetch WILDS's fmow v1.1 (54 GB) on a machine with internet with WILDS's own downloader (`pip install "
            "wilds`, then its get_dataset('fmow') with root_dir set to the data root; https://wilds.stanford.edu/"
            "get_started/), so that the data root holds fmow_v1.1/rgb_metadata.csv and fmow_v1.1/images/"
            "rgb_img_<row>.png")


def fmow_available(root: Path) -> bool:
    return (root / FMOW_CSV).is_file() and (root / FMOW_IMAGES).is_dir()


def _when(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _fmow_rows(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"split", "category", "timestamp"} <= set(rows[0]):
        raise BadListing(f"{path}: expected WILDS's rgb_metadata.csv with columns split, category and timestamp")
    return rows, list(check_class_count("fmow", sorted({r["category"] for r in rows}), FMOW_CLASSES, path))


@register_dataset(
    DatasetInfo("fmow", FMOW_CLASSES, 3, SIZE, "FMoW (WILDS v1.1 RGB, 224x224 PNGs) with WILDS's official "
                "split: train before 2013, out-of-distribution test from 2016", encoded=True),
    available=fmow_available, prepare=_not_preparable("fmow", FMOW, FMOW_HOW, fmow_available))
def fmow(root: Path) -> SourceData:
    if not fmow_available(root):
        raise _missing("fmow", root, FMOW, FMOW_HOW)
    rows, classes = _fmow_rows(root / FMOW_CSV)
    to_label = {c: i for i, c in enumerate(classes)}
    # an image is named by its row in the metadata (`rgb_img_<row>.png`), seq rows included
    train = [i for i, r in enumerate(rows) if r["split"] == "train" and _when(r["timestamp"]) < FMOW_TRAIN_BEFORE]
    test = [i for i, r in enumerate(rows) if r["split"] == "test" and _when(r["timestamp"]) >= FMOW_TEST_FROM]
    parts = []
    for rows_at, key in ((train, "fmow-train"), (test, "fmow-ood-test")):
        files = [f"rgb_img_{i}.png" for i in rows_at]
        check_files_exist(root / FMOW_IMAGES, files, f"fmow ({key})")
        parts.append(image_files(root / FMOW_IMAGES, files, [to_label[rows[i]["category"]] for i in rows_at], key))
    return SourceData(*parts, class_names=readable(classes))
