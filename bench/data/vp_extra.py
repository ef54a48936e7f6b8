"""Stanford Cars and SUN397, the visual-prompting benchmarks torchvision reads: its own classes list the files
(download=False; StanfordCars reads the devkit .mat files, SUN397 ClassName.txt and the folders) and the images
stay encoded on disk (`ImageFiles`), decoded once at the size a cell asks for.

- `stanford_cars`: the official train (8,144) and test (8,041) split; class names from devkit/cars_meta.mat.
- `sun397`: torchvision has no split. With CoOp's `split_zhou_SUN397.json` in the SUN397 folder (CoOp's
  DATASETS.md; paths relative to that folder) its train+val is the pool and its test the official test, as in
  CoOp and the visual-prompting papers that follow it; without it, every image (108,754) and the seeded
  stratified split. Class names from ClassName.txt (torchvision's reading: `/a/abbey` -> `abbey`; underscores
  read as spaces, as for every name read from files).
"""
from __future__ import annotations

from pathlib import Path

from torchvision import datasets as tvd

from .listing import check_class_count, check_files_exist, image_files, read_split_file
from .registry import register_dataset
from .types import DatasetInfo, DatasetMissing, SourceData, readable

SIZE = 224  # default decode size: the ImageNet backbones' input resolution
CARS_CLASSES, SUN_CLASSES = 196, 397
CARS_DIR = "stanford_cars"  # torchvision's folder under the data root
CARS_FILES = ("devkit/cars_meta.mat", "devkit/cars_train_annos.mat", "cars_test_annos_withlabels.mat")
CARS_FIX = (
    "its official URL is dead (pytorch/vision#7545): put cars_train/ and cars_test/ from the Kaggle mirror "
    "https://www.kaggle.com/datasets/jessicali9530/stanford-cars-dataset, and devkit/ and "
    "cars_test_annos_withlabels.mat (linked in that issue), in the folder looked in; "
    "`reprogbench prepare stanford_cars` cannot fetch it"
)
SUN_DIR = "SUN397"  # torchvision's folder under the data root
SUN_SPLIT = "split_zhou_SUN397.json"  # CoOp's split file, read from inside SUN_DIR


def _cars_dir(root: Path) -> Path:
    return root / CARS_DIR


def cars_available(root: Path) -> bool:
    return all((_cars_dir(root) / f).is_file() for f in CARS_FILES) and all(
        (_cars_dir(root) / d).is_dir() for d in ("cars_train", "cars_test"))


def _cars_split(root: Path, split: str) -> tuple[list[str], list[int], list[str]]:
    # reads the .mat files, opens no image; `_samples` is its listing (path, label), which it keeps private
    ds = tvd.StanfordCars(str(root), split=split, download=False)
    base = _cars_dir(root)
    files = [str(Path(path).relative_to(base)) for path, _ in ds._samples]
    check_files_exist(base, files, f"stanford_cars {split}")
    classes = check_class_count("stanford_cars", ds.classes, CARS_CLASSES, base / "devkit" / "cars_meta.mat")
    return files, [label for _, label in ds._samples], list(classes)


@register_dataset(
    DatasetInfo("stanford_cars", CARS_CLASSES, 3, SIZE, "torchvision StanfordCars (JPEGs; devkit .mat labels; official "
                "train/test)", encoded=True),
    available=cars_available, prepare=lambda root: cars_prepare(root))
def stanford_cars(root: Path) -> SourceData:
    if not cars_available(root):
        raise DatasetMissing("stanford_cars", [str(_cars_dir(root))], CARS_FIX)
    (train, train_labels, classes), (test, test_labels, _) = (_cars_split(root, s) for s in ("train", "test"))
    base = _cars_dir(root)
    return SourceData(image_files(base, train, train_labels, "stanford_cars-train"),
                      image_files(base, test, test_labels, "stanford_cars-test"), class_names=readable(classes))


def cars_prepare(root: Path) -> Path:
    """Nothing to fetch from: say, in one line, where the files come from and where they go."""
    if cars_available(root):
        return _cars_dir(root)
    raise DatasetMissing("stanford_cars", [str(_cars_dir(root))], CARS_FIX)


def sun_available(root: Path) -> bool:
    return (root / SUN_DIR / "ClassName.txt").is_file()


def _sun_label(relative: str, to_index: dict[str, int]) -> int:
    return to_index["/".join(Path(relative).parts[1:-1])]  # a/abbey/sun_x.jpg -> abbey (torchvision's rule)


@register_dataset(
    DatasetInfo("sun397", SUN_CLASSES, 3, SIZE, f"torchvision SUN397 (JPEGs; CoOp's {SUN_SPLIT} when in the SUN397 "
                "folder, else seeded stratified)", encoded=True),
    available=sun_available, prepare=lambda root: sun_prepare(root))
def sun397(root: Path) -> SourceData:
    folder = root / SUN_DIR
    if not sun_available(root):
        raise DatasetMissing("sun397", [str(folder)],
                             f"run `reprogbench prepare sun397 --data-root {root}` on a machine with internet")
    ds = tvd.SUN397(str(root), download=False)  # reads ClassName.txt and lists the folders, opens no image
    classes = readable(check_class_count("sun397", ds.classes, SUN_CLASSES, folder / "ClassName.txt"))
    if (folder / SUN_SPLIT).is_file():
        split = read_split_file(folder / SUN_SPLIT)
        pool = [item[0] for item in split["train"] + split["val"]]
        test = [item[0] for item in split["test"]]
        check_files_exist(folder, pool + test, f"sun397 ({SUN_SPLIT})")
        return SourceData(
            image_files(folder, pool, [_sun_label(f, ds.class_to_idx) for f in pool], "sun397-coop-trainval"),
            image_files(folder, test, [_sun_label(f, ds.class_to_idx) for f in test], "sun397-coop-test"),
            class_names=classes)
    # rglob's order is the file system's: sorted, so that a position means the same image everywhere
    listed = sorted((str(Path(p).relative_to(folder)), y) for p, y in zip(ds._image_files, ds._labels, strict=True))
    return SourceData(image_files(folder, [f for f, _ in listed], [y for _, y in listed], "sun397-all"), None,
                      class_names=classes)


def sun_prepare(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tvd.SUN397(str(root), download=True)  # torchvision's URL and md5 (37 GB); a no-op when the folder is there
    return root / SUN_DIR
