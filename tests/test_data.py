"""Contract tests for bench.data, run against small files in the real on-disk formats (tests/fixtures_data.py)."""
from __future__ import annotations

import builtins
import io
import json
import os
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_data import (
    IDX_NAMES,
    write_caltech101,
    write_caltech256,
    write_cifar10,
    write_cifar100,
    write_idx_files,
    write_mnist_idx,
)
from fixtures_folders import write_fmow, write_isic, write_stanford_cars, write_sun397, write_ucf101
from fixtures_vp import write_vp_sets

from bench.data import (
    DatasetMissing,
    TaskData,
    dataset_available,
    dataset_info,
    default_data_root,
    list_datasets,
    load_task,
    prepare,
    synthetic,
)
from bench.data.splits import stratified_split, stratified_subsample
from bench.registry import UnknownName

DEBIAN_ENV = "REPROGBENCH_DEBIAN_FASHION_MNIST"
REAL_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
OFFICIAL_TEST = {"mnist", "fashion_mnist", "cifar10", "cifar100",  # and their subsets
                 "svhn", "stl10", "food101", "flowers102", "dtd", "gtsrb", "oxford_pets",
                 "stanford_cars", "ucf101", "fmow"}
DEBIAN_BACKED = [n for n in list_datasets() if n.startswith("fashion_mnist")]
# (official train or whole dataset, official test or carved test) for the fixture files and the built-in sets;
# fixture labels cycle through the classes, so a two-class subset keeps 2/10 of a 10-class fixture.
POOL_AND_TEST = {
    "mnist": (200, 50), "fashion_mnist": (200, 50), "cifar10": (100, 20), "cifar100": (300, 100),
    "mnist_01": (40, 10), "fashion_mnist_01": (40, 10), "cifar10_01": (20, 4),
    "digits": (1797 - 359, 359), "digits_01": (360 - 72, 72), "squares": (4800, 1200),
    "digits_0to4": (901 - 180, 180),  # 178 + 182 + 177 + 183 + 181 images of digits 0-4
    "squares_1to5": (2400, 600),
    # 3 JPEGs per class: 1 test, 1 val, 1 train each
    "caltech101": (202, 101), "caltech256": (514, 257), "caltech256_reduced": (514, 257),
    "caltech101_thesis": (194, 97),  # the fixture's 101 classes less Faces, Faces_easy, Motorbikes, airplanes
    # tests/fixtures_vp.py: every class in every official split; EuroSAT 5 per class, no official split
    "svhn": (60, 20), "stl10": (30, 20), "food101": (202, 101), "flowers102": (204, 102), "dtd": (94, 47),
    "gtsrb": (86, 43), "oxford_pets": (74, 37), "eurosat": (40, 10),
    # tests/fixtures_folders.py: 2 official train + 1 test per class, or 3 per class where there is no test split
    "stanford_cars": (392, 196), "sun397": (794, 397), "ucf101": (202, 101), "fmow": (124, 62),
    "isic": (21 - 7, 7),  # 3 of each of 6 classes and 3 of the 7 nv images (AutoVP keeps every third)
}
ENCODED_SIZE = 16  # encoded datasets (JPEG folders) are decoded at this size here: the contract, not the pixels
CASES = [(n, "root") for n in list_datasets()] + [(n, "debian") for n in DEBIAN_BACKED]


def _has_official_test(name: str) -> bool:
    return name.removesuffix("_01") in OFFICIAL_TEST


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    # Never touch ~/.cache or the real Debian files unless a test asks for them.
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path_factory.mktemp("default_root")))
    monkeypatch.setenv(DEBIAN_ENV, str(tmp_path_factory.mktemp("no_debian") / "missing"))


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_mnist_idx(root, "MNIST", seed=1)
    write_mnist_idx(root, "FashionMNIST", seed=2)
    write_cifar10(root, seed=3)
    write_cifar100(root, seed=4)
    write_caltech101(root, counts=(3,) * 101, background=1, seed=5)
    write_caltech256(root, counts=(3,) * 257, seed=6)
    write_vp_sets(root)
    write_stanford_cars(root)
    write_sun397(root)
    write_ucf101(root)
    write_isic(root)
    write_fmow(root)
    return root


@pytest.fixture(scope="session")
def debian_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("debian") / "fashion-mnist"
    write_idx_files(folder, gz=True, seed=2)
    return folder


@pytest.fixture
def root_for(data_root, debian_dir, tmp_path, monkeypatch):
    """The data root for a case: the shared fixture root, or an empty one with Debian gz files to unpack."""

    def pick(how: str) -> Path:
        if how == "root":
            return data_root
        monkeypatch.setenv(DEBIAN_ENV, str(debian_dir))
        return tmp_path / "empty_root"

    return pick


def _index_sets(t: TaskData) -> dict[str, set[int]]:
    return {s: set(getattr(t, s).source_index.tolist()) for s in ("train", "val", "test")}


def _counts(labels: torch.Tensor, k: int) -> torch.Tensor:
    return torch.bincount(labels, minlength=k)


# --------------------------------------------------------------------------- the contract, per dataset


@pytest.mark.parametrize(("name", "how"), CASES, ids=[f"{n}-{h}" for n, h in CASES])
def test_contract(name, how, root_for):
    root = root_for(how)
    info = dataset_info(name)
    size = ENCODED_SIZE if info.encoded else None
    load = partial(load_task, name, data_root=root, image_size=size)
    t = load(split_seed=0, val_fraction=0.1, test_fraction=0.2)
    k = info.num_classes
    # the info declared, plus the class names the files gave where they were not declared
    assert t.info == replace(info, class_names=t.info.class_names) and info.name == name and info.channels in (1, 3)
    assert len(t.info.class_names) in (0, k) and info.class_names in ((), t.info.class_names)

    for part in (t.train, t.val, t.test):
        assert part.images.dtype == torch.uint8 and part.labels.dtype == torch.int64
        assert part.images.shape[1:] == (info.channels, size or info.size, size or info.size)
        assert len(part.images) == len(part.labels) > 0
        assert 0 <= int(part.labels.min()) and int(part.labels.max()) < k
    assert set(t.train.labels.tolist()) == set(range(k))

    # Disjoint, and the sizes add up.
    sets = _index_sets(t)
    sizes = t.split["sizes"]
    assert sizes == {s: len(v) for s, v in sets.items()}
    assert (sizes["train"] + sizes["val"], sizes["test"]) == POOL_AND_TEST[name]
    assert all(len(getattr(t, s)) == len(v) for s, v in sets.items())  # no sample twice within a split
    if _has_official_test(name):
        assert not sets["train"] & sets["val"]  # test indices point into the official test file, not the pool
        assert t.split["test_fraction"] is None
    else:
        assert not (sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"])
        assert t.split["test_fraction"] == 0.2
    json.dumps(t.split)
    assert {"seed", "val_fraction", "test_fraction", "max_train", "sizes", "source"} <= set(t.split)

    # Stratified: per class, val (and test when carved) holds the fraction of the pool, within one sample.
    pool = [t.train, t.val] + ([] if _has_official_test(name) else [t.test])
    per_class = sum(_counts(p.labels, k) for p in pool)
    assert (_counts(t.val.labels, k).double() - per_class * 0.1).abs().max() <= 1
    if not _has_official_test(name):
        assert (_counts(t.test.labels, k).double() - per_class * 0.2).abs().max() <= 1

    # Same seed: identical; another seed: another split of the same pool.
    again = load(split_seed=0)
    for s in ("train", "val", "test"):
        a, b = getattr(t, s), getattr(again, s)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
        assert torch.equal(a.source_index, b.source_index)
    assert again.split == t.split
    other = load(split_seed=1)
    assert not torch.equal(other.train.source_index, t.train.source_index)
    assert other.split["fingerprint"] != t.split["fingerprint"]
    o = _index_sets(other)
    if _has_official_test(name):
        assert o["train"] | o["val"] == sets["train"] | sets["val"] and o["test"] == sets["test"]
    else:
        assert o["train"] | o["val"] | o["test"] == sets["train"] | sets["val"] | sets["test"]

    # max_train subsamples train only, keeping class proportions.
    m = len(t.train) // 2
    small = load(split_seed=0, max_train=m)
    assert len(small.train) == m and small.split["max_train"] == m
    assert set(small.train.source_index.tolist()) <= sets["train"]
    assert torch.equal(small.val.source_index, t.val.source_index)
    assert torch.equal(small.test.source_index, t.test.source_index)
    expected = _counts(t.train.labels, k).double() * m / len(t.train)
    assert (_counts(small.train.labels, k).double() - expected).abs().max() < 1


@pytest.mark.parametrize("name", list_datasets())
def test_missing_files_say_where_and_how(name, tmp_path):
    empty = tmp_path / "empty"
    if dataset_available(name, empty):  # needs no files (digits, squares)
        assert isinstance(load_task(name, data_root=empty), TaskData)
        return
    with pytest.raises(DatasetMissing) as caught:
        load_task(name, data_root=empty)
    msg = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert "\n" not in msg and name in msg and str(empty) in msg
    assert "reprogbench prepare" in msg and "download=True" not in msg
    if name.startswith("fashion_mnist"):
        assert "apt install dataset-fashion-mnist" in msg and os.environ[DEBIAN_ENV] in msg
    assert not (empty / "FashionMNIST").exists()  # nothing half-made


def test_dataset_available(data_root, debian_dir, tmp_path, monkeypatch):
    assert dataset_available("mnist", data_root) and not dataset_available("mnist", tmp_path)
    assert dataset_available("digits", tmp_path) and dataset_available("squares", tmp_path)
    assert not dataset_available("fashion_mnist", tmp_path)
    monkeypatch.setenv(DEBIAN_ENV, str(debian_dir))
    assert dataset_available("fashion_mnist_01", tmp_path)
    assert not list(tmp_path.iterdir())  # checking unpacked nothing


# --------------------------------------------------------------------------- specific datasets


def test_squares_pixels_match_labels():
    t = load_task("squares")
    info = dataset_info("squares")
    assert (info.size, info.channels, info.num_classes) == (36, 1, 10)
    for part in (t.train, t.val, t.test):
        white = part.images.long().sum(dim=(1, 2, 3))
        assert torch.equal(white // (9 * 255), part.labels + 1) and not bool((white % (9 * 255)).any())
        # Each 4x4 cell is empty or exactly a 3x3 white square with a black gap on its right and bottom.
        cells = part.images.view(-1, 9, 4, 9, 4).permute(0, 1, 3, 2, 4).reshape(-1, 4, 4)
        square = torch.zeros(4, 4, dtype=torch.uint8)
        square[:3, :3] = 255
        assert bool(((cells == 0).all(dim=(1, 2)) | (cells == square).all(dim=(1, 2))).all())
    labels = torch.cat([t.train.labels, t.val.labels, t.test.labels])
    assert torch.equal(torch.bincount(labels), torch.full((10,), 600))


def test_squares_are_fixed_data():
    synthetic._squares.cache_clear()
    first = load_task("squares", split_seed=3)
    synthetic._squares.cache_clear()  # regenerate, not the cached tensors
    second = load_task("squares", split_seed=3)
    for s in ("train", "val", "test"):
        assert torch.equal(getattr(first, s).images, getattr(second, s).images)


def test_digits_scaling():
    from sklearn.datasets import load_digits

    raw = load_digits()
    t = load_task("digits")
    assert len(t.train) + len(t.val) + len(t.test) == len(raw.target) == 1797
    i = int(t.test.source_index[0])
    expected = np.floor(raw.images[i] * 255 / 16 + 0.5).astype(np.uint8)
    assert np.array_equal(t.test.images[0, 0].numpy(), expected) and int(t.test.labels[0]) == raw.target[i]


SUBSETS = [("mnist_01", "mnist"), ("cifar10_01", "cifar10"), ("fashion_mnist_01", "fashion_mnist")]


@pytest.mark.parametrize(("name", "base"), SUBSETS)
def test_subset_keeps_original_images_relabelled(name, base, data_root):
    sub, full = load_task(name, data_root=data_root), load_task(base, data_root=data_root)
    assert dataset_info(name).num_classes == 2 and dataset_info(name).size == dataset_info(base).size
    # The official train file, reassembled from the base's train and val in file order.
    position = torch.argsort(torch.cat([full.train.source_index, full.val.source_index]))
    full_train = torch.cat([full.train.images, full.val.images])[position]
    for part, originals in ((sub.train, full_train), (sub.val, full_train), (sub.test, full.test.images)):
        assert set(part.labels.tolist()) <= {0, 1}
        assert torch.equal(part.images, originals[part.source_index])
        assert torch.equal(part.images[:, 0, 0, 2].long(), part.labels)  # the fixture wrote the label in a pixel
    n01 = int((full.test.labels <= 1).sum())
    assert len(sub.test) == n01


def test_fashion_mnist_unpacks_debian_gz_once(debian_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(DEBIAN_ENV, str(debian_dir))
    root = tmp_path / "root"
    t = load_task("fashion_mnist", data_root=root)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(debian_dir) in err
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_NAMES.values())  # no temporary leftovers
    assert len(t.train) + len(t.val) == 200 and len(t.test) == 50
    load_task("fashion_mnist", data_root=root)
    assert capsys.readouterr().err == ""  # already unpacked: silent


def test_official_test_is_the_test_file(data_root):
    t = load_task("cifar10", data_root=data_root)
    assert torch.equal(t.test.source_index, torch.arange(20))
    assert bool((t.test.images[:, 0, 0, 3] == 1).all()) and bool((t.train.images[:, 0, 0, 3] == 0).all())


# --------------------------------------------------------------------------- registry and roots


def test_dataset_info_reads_no_files(monkeypatch, tmp_path):
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path))

    def no_files(*args, **kwargs):
        raise AssertionError(f"dataset_info opened a file: {args}")

    monkeypatch.setattr(builtins, "open", no_files)
    monkeypatch.setattr(io, "open", no_files)
    infos = [dataset_info(n) for n in list_datasets()]
    monkeypatch.undo()
    assert [i.name for i in infos] == list_datasets()
    assert not list(tmp_path.iterdir())


def test_unknown_name_lists_known():
    for call in (dataset_info, load_task, lambda n: prepare(n, ".")):
        with pytest.raises(UnknownName) as caught:
            call("no_such_set")
        assert all(n in str(caught.value) for n in list_datasets())


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("REPROGBENCH_DATA")
    assert default_data_root() == Path.home() / ".cache" / "reprogbench" / "data"


def test_prepare_offline_cases(debian_dir, tmp_path, monkeypatch, capsys):
    assert prepare("squares", tmp_path) == tmp_path and "nothing" in capsys.readouterr().err
    monkeypatch.setenv(DEBIAN_ENV, str(debian_dir))  # Debian files present: no network needed
    assert prepare("fashion_mnist_01", tmp_path) == tmp_path / "FashionMNIST" / "raw"
    assert dataset_available("fashion_mnist", tmp_path)


def test_bad_arguments(data_root):
    with pytest.raises(ValueError):
        load_task("digits", val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError):
        load_task("digits", max_train=0)


# --------------------------------------------------------------------------- split helpers


def test_stratified_split_small_classes():
    labels = torch.tensor([0] * 50 + [1] * 2 + [2] * 1)
    test, val, train = stratified_split(labels, [0.2, 0.1], seed=0)
    assert [int((labels[test] == c).sum()) for c in range(3)] == [10, 1, 0]
    assert [int((labels[val] == c).sum()) for c in range(3)] == [5, 1, 0]  # at least one when the class has 2+
    assert sorted(torch.cat([test, val, train]).tolist()) == list(range(len(labels)))
    assert all(torch.equal(p, torch.sort(p)[0]) for p in (test, val, train))


def test_stratified_subsample_exact_size():
    labels = torch.arange(103) % 7
    for n in (1, 10, 50, 102, 500):
        picked = stratified_subsample(labels, n, seed=5)
        assert len(picked) == min(n, 103) == len(set(picked.tolist()))
        assert torch.equal(picked, stratified_subsample(labels, n, seed=5))


# --------------------------------------------------------------------------- the real thing


@pytest.mark.skipif(not REAL_DEBIAN.is_dir(), reason=f"{REAL_DEBIAN} absent: install Debian's dataset-fashion-mnist")
def test_real_debian_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.delenv(DEBIAN_ENV)
    t = load_task("fashion_mnist", data_root=tmp_path)
    assert len(t.train) + len(t.val) == 60_000 and len(t.test) == 10_000
    assert len(t.val) == 6_000  # 600 per class: Fashion-MNIST's train set is balanced
    assert set(t.test.labels.tolist()) == set(range(10)) and dataset_info("fashion_mnist").num_classes == 10
    assert t.train.images.shape[1:] == (1, 28, 28)
