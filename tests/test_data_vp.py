"""The visual-prompting datasets, read through torchvision's own classes from small files in their real layouts
(tests/fixtures_vp.py), and the class names that travel with every task."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from fixtures_data import write_cifar10
from fixtures_vp import ENCODED_WRITERS, STL10_NAMES, write_svhn, write_vp_sets
from PIL import Image
from torchvision import datasets as tvd

from bench.data import DatasetMissing, dataset_available, dataset_info, load_task
from bench.data.registry import dataset_entry
from bench.data.types import ImageFiles

POOLS = {"food101": ("train",), "flowers102": ("train", "val"), "dtd": ("train", "val"), "gtsrb": ("train",),
         "oxford_pets": ("trainval",), "eurosat": ("train",)}
DEFAULT_SIZE = {"food101": 224, "flowers102": 224, "dtd": 224, "oxford_pets": 224, "gtsrb": 32, "eurosat": 64}
ALL = (*ENCODED_WRITERS, "svhn", "stl10")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path_factory.mktemp("default_root")))


@pytest.fixture(scope="module")
def vp(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("vp")
    return root, write_vp_sets(root)


def _names(name: str, written) -> tuple[str, ...]:
    if name == "flowers102":
        return tuple(tvd.Flowers102.classes)  # declared from torchvision's class attribute
    return tuple(written.classes)  # GTSRB: none anywhere, so ()


@pytest.mark.parametrize("name", list(ENCODED_WRITERS))
def test_loader_lists_files_in_torchvision_order_without_decoding(name, vp, monkeypatch):
    root, written = vp
    info = dataset_info(name)
    assert info.encoded and info.size == DEFAULT_SIZE[name] and info.channels == 3

    def no_decoding(*args, **kwargs):
        raise AssertionError(f"{name}: the loader opened an image {args}")

    monkeypatch.setattr(Image, "open", no_decoding)
    data = dataset_entry(name).load(root)
    monkeypatch.undo()
    w = written[name]
    assert isinstance(data.train, ImageFiles) and data.train.root == root
    assert (data.train.files, data.train.labels.tolist()) == w.pool(*POOLS[name])
    if name == "eurosat":
        assert data.test is None
    else:
        assert isinstance(data.test, ImageFiles)
        assert (data.test.files, data.test.labels.tolist()) == (w.files["test"], w.labels["test"])
        assert data.train.cache_key != data.test.cache_key


@pytest.mark.parametrize("name", list(ENCODED_WRITERS))
def test_encoded_sets_decode_at_the_size_asked(name, vp):
    root, written = vp
    w, info = written[name], dataset_info(name)
    t = load_task(name, data_root=root, image_size=16)
    assert t.info.class_names == _names(name, w) and len(t.info.class_names) in (0, info.num_classes)
    pool_files, pool_labels = w.pool(*POOLS[name])
    for part in (t.train, t.val, t.test):
        assert part.images.shape[1:] == (3, 16, 16) and part.images.dtype == torch.uint8
        green = part.images[:, 1].float().mean(dim=(1, 2))  # each file is one flat colour: green = its label
        assert (green - part.labels.float()).abs().max() <= 4
    for part in (t.train, t.val):
        assert part.labels.tolist() == [pool_labels[i] for i in part.source_index.tolist()]
    if name == "eurosat":  # no official split: a seeded stratified test from the one pool
        sets = [set(p.source_index.tolist()) for p in (t.train, t.val, t.test)]
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
        assert set().union(*sets) == set(range(len(pool_files))) and len(t.test) == 10
        return
    assert sorted(t.test.source_index.tolist()) == list(range(len(w.files["test"])))  # the whole official test
    assert t.test.labels.tolist() == [w.labels["test"][i] for i in t.test.source_index.tolist()]
    red_pool = torch.cat([t.train.images[:, 0], t.val.images[:, 0]]).float().mean(dim=(1, 2))
    assert bool((t.test.images[:, 0] > 200).all()) and bool((red_pool < 150).all())  # no test file in train/val
    assert len(t.train) + len(t.val) == len(pool_files)
    if len(POOLS[name]) > 1:  # the official val split is part of the pool
        assert bool(((red_pool - 96).abs() <= 4).any()) and bool((red_pool <= 4).any())


def test_default_decode_size_and_cache_keys(vp):
    root, _ = vp
    t = load_task("gtsrb", data_root=root)  # 32x32: as ILM-VP feeds GTSRB
    assert t.train.images.shape[1:] == (3, 32, 32)
    data = dataset_entry("flowers102").load(root)
    assert (data.train.cache_key, data.test.cache_key) == ("flowers102-trainval", "flowers102-test")


def test_svhn_arrays(vp):
    root, written = vp
    w, t = written["svhn"], load_task("svhn", data_root=root)
    assert t.info.class_names == tuple("0123456789")
    assert torch.equal(t.test.images, torch.as_tensor(w.test_images))  # the .mat's X (32, 32, 3, N) as NCHW
    assert torch.equal(t.test.labels, torch.as_tensor(w.test_labels))  # stored 10 read as digit 0
    assert bool((t.test.labels == 0).any())
    for part in (t.train, t.val):
        assert torch.equal(part.images, torch.as_tensor(w.train_images)[part.source_index])
        assert torch.equal(part.labels, torch.as_tensor(w.train_labels)[part.source_index])


def test_stl10_arrays_and_names(vp):
    root, written = vp
    w, t = written["stl10"], load_task("stl10", data_root=root)
    assert dataset_info("stl10").class_names == () and t.info.class_names == tuple(STL10_NAMES)  # class_names.txt
    assert t.train.images.shape[1:] == (3, 96, 96)
    assert torch.equal(t.test.images, torch.as_tensor(w.test_images))  # column-major binaries, read the right way
    assert torch.equal(t.test.labels, torch.as_tensor(w.test_labels))
    assert torch.equal(t.train.images, torch.as_tensor(w.train_images)[t.train.source_index])
    assert not (root / "stl10_binary" / "unlabeled_X.bin").exists()  # the 2.6 GB unlabeled file is not needed


def test_class_names_from_files_reach_subsets_and_joint_tasks(tmp_path):
    write_cifar10(tmp_path)  # batches.meta names class0..class9
    assert dataset_info("cifar10").class_names == ()  # only the files have them
    assert load_task("cifar10", data_root=tmp_path).info.class_names == tuple(f"class{i}" for i in range(10))
    assert load_task("cifar10_01", data_root=tmp_path).info.class_names == ("class0", "class1")
    assert dataset_info("mnist_01").class_names == tuple(tvd.MNIST.classes[:2])
    write_svhn(tmp_path)
    joint = load_task("cifar10_01+svhn", data_root=tmp_path)
    assert joint.info.class_names == ("class0", "class1", *"0123456789")
    assert dataset_info("mnist_01+svhn").class_names == (*tvd.MNIST.classes[:2], *"0123456789")  # all declared
    assert dataset_info("mnist_01+digits_01").class_names == ()  # digits' names come with its data


@pytest.mark.parametrize("name", ALL)
def test_missing_folder_names_prepare(name, tmp_path):
    empty = tmp_path / "empty"
    assert not dataset_available(name, empty)
    with pytest.raises(DatasetMissing) as caught:
        load_task(name, data_root=empty)
    msg = str(caught.value)
    assert "\n" not in msg and name in msg and str(empty) in msg
    assert f"reprogbench prepare {name} --data-root {empty}" in msg and "download=True" not in msg
    assert not empty.exists()  # nothing half-made


def test_incomplete_downloads_are_one_line(tmp_path):
    root = tmp_path / "root"
    w = ENCODED_WRITERS["food101"](root)
    (root / w.files["test"][3]).unlink()
    with pytest.raises(ValueError, match=r"food101: 1 listed file\(s\) missing .*`reprogbench prepare food101"):
        load_task("food101", data_root=root)
    ENCODED_WRITERS["dtd"](root)
    test_list = root / "dtd" / "dtd" / "labels" / "test1.txt"
    test_list.write_text("".join(test_list.read_text().splitlines(keepends=True)[1:]))  # a class gone from test
    with pytest.raises(ValueError, match="dtd: its split files list different classes"):
        load_task("dtd", data_root=root)


def test_prepare_runs_torchvision_download(tmp_path, monkeypatch):
    """The stock classes' own download code runs; only the archive fetch is replaced by the fixture's files."""
    import torchvision.datasets.eurosat as tv_eurosat
    import torchvision.datasets.gtsrb as tv_gtsrb

    staged, urls = tmp_path / "staged", []
    ENCODED_WRITERS["gtsrb"](staged)
    ENCODED_WRITERS["eurosat"](staged)
    parts = {"GTSRB-Training_fixed.zip": "gtsrb/GTSRB/Training", "GTSRB_Final_Test_Images.zip":
             "gtsrb/GTSRB/Final_Test", "GTSRB_Final_Test_GT.zip": "gtsrb/GT-final_test.csv",
             "EuroSAT.zip": "eurosat/2750"}

    def fake_download(url, download_root, md5=None, **kwargs):
        assert md5 is not None  # torchvision checks what it fetched
        urls.append(url)
        rel = Path(parts[url.rsplit("/", 1)[1]])  # the archive's contents, extracted into download_root
        dest = Path(download_root) / rel.relative_to(rel.parts[0])
        dest.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (staged / rel).is_dir() else shutil.copy)(staged / rel, dest)

    monkeypatch.setattr(tv_gtsrb, "download_and_extract_archive", fake_download)
    monkeypatch.setattr(tv_eurosat, "download_and_extract_archive", fake_download)
    root = tmp_path / "root"
    assert dataset_entry("gtsrb").prepare(root) == root / "gtsrb" and len(urls) == 3
    assert dataset_entry("eurosat").prepare(root) == root / "eurosat" and len(urls) == 4
    assert urls[0].startswith("https://sid.erda.dk/") and urls[3].startswith("https://huggingface.co/")
    dataset_entry("gtsrb").prepare(root)
    assert len(urls) == 4  # there already: nothing fetched
    assert {n: len(load_task(n, data_root=root).test) for n in ("gtsrb", "eurosat")} == {"gtsrb": 43, "eurosat": 10}
    assert sorted(p.name for p in (root / "gtsrb").iterdir()) == ["GT-final_test.csv", "GTSRB"]
