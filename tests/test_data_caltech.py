"""Caltech-101, Caltech-256 and the thesis's reduced Caltech-256, read from small JPEG trees in the real layouts."""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_data import WrittenFolders, write_caltech101, write_caltech256, write_jpeg
from PIL import Image

from bench.data import DatasetMissing, TaskData, caltech, dataset_available, dataset_info, list_datasets, load_task
from bench.data.splits import _quota

NAMES = ("caltech101", "caltech101_thesis", "caltech256", "caltech256_reduced")
SPLIT = {"split_seed": 0, "val_fraction": 0.15, "test_fraction": 0.15, "max_train": None}  # the thesis's 70/15/15


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path_factory.mktemp("default_root")))


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> tuple[Path, WrittenFolders, WrittenFolders]:
    root = tmp_path_factory.mktemp("caltech")
    return root, write_caltech101(root), write_caltech256(root)


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Every file PIL opens from here on (torchvision's Caltech classes open their JPEGs with PIL.Image.open)."""
    calls: list[str] = []
    real_open = Image.open

    def counting_open(fp, *args, **kwargs):
        calls.append(str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    return calls


def _reference(path: Path) -> torch.Tensor:
    """The decoding the module promises: RGB, the whole image resized to 224x224 by PIL's bilinear filter."""
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)


def _whole(t: TaskData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """train + val + test put back in source order: (source_index, labels, images)."""
    parts = (t.train, t.val, t.test)
    index = torch.cat([p.source_index for p in parts])
    order = torch.argsort(index)
    return index[order], torch.cat([p.labels for p in parts])[order], torch.cat([p.images for p in parts])[order]


def _check_split(t: TaskData, k: int) -> None:
    """Disjoint, stratified like load_task promises, every class in train, val and test (fixtures have >= 3)."""
    sets = [set(p.source_index.tolist()) for p in (t.train, t.val, t.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    whole = torch.bincount(torch.cat([t.train.labels, t.val.labels, t.test.labels]), minlength=k)
    test = torch.tensor([_quota(int(n), 0.15, int(n)) for n in whole])
    val = torch.tensor([_quota(int(n), 0.15, int(n) - int(m)) for n, m in zip(whole, test, strict=True)])
    assert torch.equal(torch.bincount(t.test.labels, minlength=k), test)
    assert torch.equal(torch.bincount(t.val.labels, minlength=k), val)
    for part in (t.train, t.val, t.test):
        assert part.images.dtype == torch.uint8 and part.images.shape[1:] == (3, 224, 224)
        assert part.labels.dtype == torch.int64 and len(part.labels) == len(part.images)
        assert set(part.labels.tolist()) == set(range(k))
    assert t.split["test_fraction"] == 0.15 and t.split["sizes"]["test"] == len(t.test)


# --------------------------------------------------------------------------- registry and missing files


def test_registered_with_their_info():
    assert set(NAMES) <= set(list_datasets())
    got = {n: dataset_info(n) for n in NAMES}
    assert {n: (i.name, i.num_classes, i.channels, i.size) for n, i in got.items()} == {
        "caltech101": ("caltech101", 101, 3, 224),
        "caltech101_thesis": ("caltech101_thesis", 97, 3, 224),
        "caltech256": ("caltech256", 257, 3, 224),
        "caltech256_reduced": ("caltech256_reduced", 257, 3, 224),
    }
    assert all("\n" not in i.source and "Caltech" in i.source for i in got.values())
    assert caltech.REDUCED_PER_CLASS == 20 and "first 20" in got["caltech256_reduced"].source


@pytest.mark.parametrize("name", NAMES)
def test_missing_root_says_where_and_how(name, tmp_path):
    empty = tmp_path / "empty"
    assert not dataset_available(name, empty)
    with pytest.raises(DatasetMissing) as caught:
        load_task(name, data_root=empty, **SPLIT)
    msg, files = str(caught.value), "caltech101" if name.startswith("caltech101") else "caltech256"
    assert f"reprogbench prepare {files}" in msg and name in msg and "download=True" not in msg
    assert caught.value.looked_in == [str(empty / files / f"{files[7:]}_ObjectCategories")]
    assert not empty.exists()  # torchvision's classes create their folder: they must not have been called


def test_available_per_dataset(trees, tmp_path):
    root = trees[0]
    assert all(dataset_available(n, root) for n in NAMES)
    write_caltech101(tmp_path, counts=(3,))
    assert dataset_available("caltech101", tmp_path) and not dataset_available("caltech256_reduced", tmp_path)


# --------------------------------------------------------------------------- what is read


def test_caltech101(trees):
    root, written, _ = trees
    t = load_task("caltech101", data_root=root, **SPLIT)
    index, labels, images = _whole(t)
    # Every file of the four real classes once, BACKGROUND_Google not at all, in torchvision's sorted order.
    assert written.classes == ["Faces", "Faces_easy", "accordion", "car_side"]
    assert (written.images_dir / "BACKGROUND_Google").is_dir() and len(written.files) == 18
    assert torch.equal(index, torch.arange(len(written.files)))
    assert labels.tolist() == written.labels == [0] * 3 + [1] * 5 + [2] * 4 + [3] * 6  # sorted folder order
    for i, rel in enumerate(written.files):
        assert torch.equal(images[i], _reference(written.images_dir / rel)), rel
    modes = {rel: Image.open(written.images_dir / rel).mode for rel in written.files[:4]}
    assert modes == {"Faces/image_0001.jpg": "RGB", "Faces/image_0002.jpg": "L",
                     "Faces/image_0003.jpg": "CMYK", "Faces_easy/image_0001.jpg": "RGB"}
    grey = images[1].long()
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])  # greyscale replicated to RGB
    assert not torch.equal(images[0][0], images[0][1])
    _check_split(t, 4)


def test_caltech101_thesis_drops_the_five_largest_categories(tmp_path):
    # The thesis's list (FinalCode/Imagenet_Caltech101_transfer_learning.ipynb in
    # ekloberdanz/Thesis_Adversarial_Reprogramming): 101 categories + BACKGROUND_Google minus these five = 97.
    assert set(caltech.THESIS_EXCLUDED) | {"BACKGROUND_Google"} == {
        "BACKGROUND_Google", "Motorbikes", "airplanes", "Faces_easy", "Faces"}
    written = write_caltech101(tmp_path)  # Faces, Faces_easy, accordion, car_side + BACKGROUND_Google
    for k, name in enumerate(("Motorbikes", "airplanes")):
        for n in (1, 2):
            write_jpeg(written.images_dir / name / f"image_{n:04d}.jpg", seed=500 + 10 * k + n)
    folders = sorted(p.name for p in written.images_dir.iterdir())
    kept = [c for c in folders if c not in {"BACKGROUND_Google", "Motorbikes", "airplanes", "Faces_easy", "Faces"}]
    assert kept == ["accordion", "car_side"]
    full = load_task("caltech101", data_root=tmp_path, **SPLIT)
    thesis = load_task("caltech101_thesis", data_root=tmp_path, **SPLIT)
    full_index, full_labels, full_images = _whole(full)
    index, labels, images = _whole(thesis)
    # The full list: Faces(3) Faces_easy(5) Motorbikes(2) accordion(4) airplanes(2) car_side(6).
    assert torch.bincount(full_labels).tolist() == [3, 5, 2, 4, 2, 6]
    # Kept: accordion -> 0, car_side -> 1; source_index still counts in the 101-class list.
    assert index.tolist() == list(range(10, 14)) + list(range(16, 22))
    assert labels.tolist() == [0] * 4 + [1] * 6
    assert torch.equal(images, full_images[index])
    assert thesis.info.num_classes == 97
    assert (tmp_path / "caltech101" / "decoded_without4_224.pt").is_file()  # its own cache beside the full one
    assert (tmp_path / "caltech101" / "decoded_224.pt").is_file()
    _check_split(thesis, 2)


def test_caltech256_and_the_reduction(trees):
    root, _, written = trees
    full = load_task("caltech256", data_root=root, **SPLIT)
    index, labels, images = _whole(full)
    assert written.classes == ["001.ak47", "002.american-flag", "003.backpack", "004.baseball-bat"]
    assert torch.equal(index, torch.arange(51)) and labels.tolist() == written.labels  # RENAME2, greg/ skipped
    for i, rel in enumerate(written.files):
        assert torch.equal(images[i], _reference(written.images_dir / rel)), rel
    _check_split(full, 4)

    reduced = load_task("caltech256_reduced", data_root=root, **SPLIT)
    r_index, r_labels, r_images = _whole(reduced)
    first20 = []
    for c in written.classes:  # each folder's first 20 file names, sorted
        first20 += sorted(f for f in written.files if f.startswith(c + "/"))[:20]
    kept = [written.files[i] for i in r_index.tolist()]  # source_index: positions in the full sorted list
    assert kept == first20 and torch.bincount(r_labels).tolist() == [20, 3, 5, 20]
    assert "001.ak47/001_0020.jpg" in kept and "001.ak47/001_0021.jpg" not in kept
    assert "004.baseball-bat/004_0021.jpg" not in kept
    assert torch.equal(r_images, images[r_index])
    _check_split(reduced, 4)
    assert {p.name for p in (root / "caltech256").iterdir()} == {
        "256_ObjectCategories", "decoded_224.pt", "decoded_first20_224.pt"
    }


def test_layout_torchvision_cannot_read_is_one_clear_error(tmp_path):
    written = write_caltech101(tmp_path, counts=(3, 3))
    (written.images_dir / "Faces" / "notes.txt").write_text("x")  # torchvision counts it as a 4th image
    with pytest.raises(ValueError, match=r"image_0004\.jpg"):
        load_task("caltech101", data_root=tmp_path, **SPLIT)


# --------------------------------------------------------------------------- the decoded cache


def test_cache_is_reused_and_invalidated(tmp_path, opened):
    written = write_caltech101(tmp_path, counts=(3, 4))
    cache = tmp_path / "caltech101" / "decoded_224.pt"
    first = load_task("caltech101", data_root=tmp_path, **SPLIT)
    assert len(opened) == 7 and cache.is_file()
    assert sorted(p.name for p in cache.parent.iterdir()) == ["101_ObjectCategories", "decoded_224.pt"]  # no .part
    stamp = cache.stat().st_mtime_ns

    opened.clear()
    again = load_task("caltech101", data_root=tmp_path, **SPLIT)
    assert opened == [] and cache.stat().st_mtime_ns == stamp  # read back, nothing decoded or rewritten
    assert all(torch.equal(getattr(first, s).images, getattr(again, s).images) for s in ("train", "val", "test"))

    write_jpeg(written.images_dir / "Faces" / "image_0004.jpg", seed=7)  # one more file: a new file list
    grown = load_task("caltech101", data_root=tmp_path, **SPLIT)
    assert len(opened) == 8 and sum(map(len, (grown.train, grown.val, grown.test))) == 8
    assert cache.stat().st_mtime_ns != stamp

    opened.clear()
    write_jpeg(written.images_dir / "Faces_easy" / "image_0002.jpg", seed=8, size=(61, 17))  # same name, new bytes
    load_task("caltech101", data_root=tmp_path, **SPLIT)
    assert len(opened) == 8
    opened.clear()
    load_task("caltech101", data_root=tmp_path, **SPLIT)
    assert opened == []


def test_reduced_cache_ignores_files_past_the_first_20(tmp_path, opened):
    written = write_caltech256(tmp_path, counts=(22, 3), quirks=False)
    load_task("caltech256", data_root=tmp_path, **SPLIT)
    load_task("caltech256_reduced", data_root=tmp_path, **SPLIT)
    assert len(opened) == 25 + 23
    opened.clear()
    write_jpeg(written.images_dir / "001.ak47" / "001_0023.jpg", seed=9)
    reduced = load_task("caltech256_reduced", data_root=tmp_path, **SPLIT)
    assert opened == [] and len(reduced.train) + len(reduced.val) + len(reduced.test) == 23  # same 20 + 3
    load_task("caltech256", data_root=tmp_path, **SPLIT)
    assert len(opened) == 26


def test_damaged_cache_is_decoded_again(tmp_path, opened, capsys):
    write_caltech101(tmp_path, counts=(3,))
    cache = tmp_path / "caltech101" / "decoded_224.pt"
    cache.write_bytes(b"half a file")
    t = load_task("caltech101", data_root=tmp_path, **SPLIT)
    assert len(opened) == 3 and len(t.train) + len(t.val) + len(t.test) == 3
    assert "ignoring unreadable cache" in capsys.readouterr().err
    opened.clear()
    load_task("caltech101", data_root=tmp_path, **SPLIT)
    assert opened == []


# --------------------------------------------------------------------------- prepare (offline: a fake download)


def test_prepare_uses_torchvision_download(tmp_path, monkeypatch):
    """torchvision's own download code runs; only the network call is replaced by the archives' contents."""
    import torchvision.datasets.caltech as tv_caltech

    staged, urls = tmp_path / "staged", []
    write_caltech101(staged, counts=(3, 3, 3))  # Faces, Faces_easy (both not in caltech101_thesis), accordion
    write_caltech256(staged, counts=(3, 4), quirks=False)

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        urls.append(url)
        dest = Path(download_root)
        if filename == "caltech-101.zip":  # the zip holds caltech-101/101_ObjectCategories.tar.gz
            (dest / "caltech-101").mkdir(parents=True)
            with tarfile.open(dest / "caltech-101" / "101_ObjectCategories.tar.gz", "w:gz") as tar:
                tar.add(staged / "caltech101" / "101_ObjectCategories", arcname="101_ObjectCategories")
            (dest / filename).write_bytes(b"zip")
        else:  # 256_ObjectCategories.tar, extracted into caltech256/
            tar_dir = staged / "caltech256" / "256_ObjectCategories"
            tar_dir.rename(dest / "256_ObjectCategories")

    monkeypatch.setattr(tv_caltech, "download_and_extract_archive", fake_download)
    root = tmp_path / "root"
    assert caltech.CALTECH101.prepare(root) == root / "caltech101" / "101_ObjectCategories"
    assert caltech.CALTECH256_REDUCED.prepare(root) == root / "caltech256" / "256_ObjectCategories"
    assert len(urls) == 2 and all(u.startswith("https://data.caltech.edu/") for u in urls)
    assert sorted(p.name for p in (root / "caltech101").iterdir()) == ["101_ObjectCategories"]  # zip cleaned up
    assert caltech.CALTECH256.prepare(root) == root / "caltech256" / "256_ObjectCategories" and len(urls) == 2
    sizes = {n: sum(map(len, (t.train, t.val, t.test)))
             for n in NAMES for t in [load_task(n, data_root=root, **SPLIT)]}
    assert sizes == {"caltech101": 9, "caltech101_thesis": 3, "caltech256": 7, "caltech256_reduced": 7}
