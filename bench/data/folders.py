"""`folder:<name>`: a user's own images at `<data root>/<name>/`, laid out as torchvision's ImageFolder reads them.

    <data root>/<name>/train/<class>/<image>     every class, at least one image each
    <data root>/<name>/test/<class>/<image>      optional: the official test set (a class may be absent)

Classes are the train folder's sub-folders in sorted order (their names, underscores read as spaces, are the
class names); with no test
folder, the seeded stratified split carves the test set. A dataset family (bench.data.registry), since the names
are the user's: `dataset_info("folder:x")` lists the class folders under the default data root, no image read.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from bench.registry import UnknownName

from .listing import BadListing, image_folder
from .registry import DatasetEntry, DatasetFamily, register_dataset_family
from .types import DatasetInfo, DatasetMissing, SourceData, readable

PREFIX = "folder"
SIZE = 224  # default decode size: the ImageNet backbones' input resolution
LAYOUT = "train/<class>/<image> (and optionally test/<class>/<image>)"


def well_formed(spec: str) -> bool:
    """One folder name directly under the data root: no path, nothing that leaves the root."""
    return bool(spec) and spec not in (".", "..") and not any(c in spec for c in "/\\:+")


def _fix(name: str, base: Path) -> str:
    return (f"put your images in {base} as {LAYOUT}, one folder per class; nothing to download, "
            f"`reprogbench prepare {name}` only checks it")


def _class_folders(train: Path) -> list[str]:
    return sorted(p.name for p in train.iterdir() if p.is_dir())


def _load(name: str, base: Path, classes: tuple[str, ...], root: Path) -> SourceData:
    train, found = image_folder(base / "train", f"{PREFIX}-{base.name}-train")
    if tuple(found) != classes:  # the folder changed since its metadata was read: labels would shift
        raise BadListing(f"{name}: the class folders of {base / 'train'} changed while in use ({len(classes)} "
                         f"then, {len(found)} now); run again")
    test = image_folder(base / "test", f"{PREFIX}-{base.name}-test", classes)[0] if (base / "test").is_dir() else None
    return SourceData(train, test)  # the names are declared: the folders' own, listed by resolve


def resolve(spec: str, root: Path) -> DatasetEntry:
    name, base = f"{PREFIX}:{spec}", root / spec
    if not well_formed(spec):
        raise UnknownName(f"{name}: name a folder directly under the data root (no / \\ : or +), e.g. folder:my_photos")
    classes = tuple(_class_folders(base / "train")) if (base / "train").is_dir() else ()
    if not classes:
        raise DatasetMissing(name, [str(base / "train")], _fix(name, base))
    # the source names no absolute path: the same folder on another machine is the same dataset
    info = DatasetInfo(name, len(classes), 3, SIZE, f"your folder <data root>/{spec} ({LAYOUT})",
                       class_names=readable(classes), encoded=True)

    def prepare(data_root: Path) -> Path:  # nothing to fetch: it is there, or resolve has said where it goes
        return base

    return DatasetEntry(info, partial(_load, name, base, classes), lambda r: (r / spec / "train").is_dir(), prepare)


register_dataset_family(DatasetFamily(
    PREFIX, well_formed, resolve,
    description=f"a folder of your own images at <data root>/<name>/ ({LAYOUT})", example="folder:my_photos",
))
