"""Folder and split-file datasets (bench/data/vp_extra.py, user_downloads.py, folders.py) read from tiny files in
their real layouts (tests/fixtures_folders.py): the files and labels each lists, the official test kept apart, the
class names, and one-line errors for what is missing or does not fit."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from fixtures_folders import (
    write_fmow,
    write_image_folder,
    write_isic,
    write_stanford_cars,
    write_sun397,
    write_ucf101,
)

from bench.data import DatasetMissing, dataset_available, dataset_info, known_task, load_task, needs_download, prepare
from bench.data.decode import decode_one
from bench.data.listing import BadListing
from bench.data.registry import dataset_entry
from bench.grid import load_grid
from bench.registry import UnknownName

SIZE = 16
NAMES = ("stanford_cars", "sun397", "ucf101", "isic", "fmow")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path_factory.mktemp("default_root")))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Every fixed-name dataset under one root; -> (root, {name: what was written})."""
    root = tmp_path_factory.mktemp("folders")
    return root, {"stanford_cars": write_stanford_cars(root), "sun397": write_sun397(root),
                  "ucf101": write_ucf101(root), "isic": write_isic(root),
                  "fmow": write_fmow(root)}


@pytest.mark.parametrize("name", NAMES)
def test_lists_the_files_and_labels_written_in_their_order(name, written):
    root, truth = written[0], written[1][name]
    source = dataset_entry(name).load(root)  # the loader's own listing, before any split
    assert source.train.root == truth.folder
    assert (source.train.files, source.train.labels.tolist()) == truth.parts["pool"]
    if "test" in truth.parts:
        assert (source.test.files, source.test.labels.tolist()) == truth.parts["test"]
        assert not set(source.train.files) & set(source.test.files)
    else:
        assert source.test is None
    assert len({*source.train.files}) == len(source.train.files)


@pytest.mark.parametrize("name", NAMES)
def test_load_task_decodes_the_right_files_and_keeps_the_official_test_apart(name, written):
    root, truth = written[0], written[1][name]
    info = dataset_info(name)
    t = load_task(name, data_root=root, image_size=SIZE)
    assert t.info.name == name and info.encoded and len(t.info.class_names) == info.num_classes
    assert list(t.info.class_names) == truth.classes
    pool_files, pool_labels = truth.parts["pool"]
    test_files, test_labels = truth.parts.get("test", truth.parts["pool"])
    for part, files, labels in ((t.train, pool_files, pool_labels), (t.val, pool_files, pool_labels),
                                (t.test, test_files, test_labels)):
        assert part.images.shape[1:] == (3, SIZE, SIZE)
        at = part.source_index.tolist()
        assert part.labels.tolist() == [labels[i] for i in at]
        first = torch.from_numpy(decode_one(str(truth.folder / files[at[0]]), SIZE).copy())
        assert torch.equal(part.images[0], first)  # pixels come from the file the label belongs to
    sizes = t.split["sizes"]
    if "test" in truth.parts:  # official: every test file, and train + val is the whole official pool
        assert sizes["test"] == len(test_files) and sizes["train"] + sizes["val"] == len(pool_files)
        assert sorted(t.test.source_index.tolist()) == list(range(len(test_files)))
        assert t.split["test_fraction"] is None
    else:  # carved: three disjoint parts of the one pool
        indices = [set(p.source_index.tolist()) for p in (t.train, t.val, t.test)]
        assert sum(map(len, indices)) == len(pool_files) == len(set().union(*indices))


def test_sun397_uses_coops_split_file_when_present(tmp_path):
    truth = write_sun397(tmp_path, split=True)
    t = load_task("sun397", data_root=tmp_path, image_size=SIZE)
    assert t.split["sizes"]["test"] == len(truth.parts["test"][0]) == 397
    assert t.split["sizes"]["train"] + t.split["sizes"]["val"] == 2 * 397
    assert t.test.labels.tolist() == truth.parts["test"][1]
    assert "scene007/outdoor" in t.info.class_names  # ClassName.txt's `/s/scene007/outdoor`, as torchvision reads it


def test_isic_keeps_every_third_nv_image_as_autovp_does(written):
    t = load_task("isic", data_root=written[0], image_size=SIZE)
    labels = torch.cat([t.train.labels, t.val.labels, t.test.labels])
    assert torch.bincount(labels, minlength=7).tolist() == [3, 3, 3, 3, 3, 3, 3]  # 7 nv written, 3 kept
    assert t.info.class_names == ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")  # the CSV's dx codes, sorted


def test_fmow_takes_wilds_train_and_out_of_distribution_test(written):
    t = load_task("fmow", data_root=written[0], image_size=SIZE)
    # per class: 2 train rows before 2013 (not the 2014 one), 1 test row from 2016 (not the 2012 one, nor seq)
    assert t.split["sizes"]["train"] + t.split["sizes"]["val"] == 2 * 62 and t.split["sizes"]["test"] == 62


def _error(call) -> str:
    with pytest.raises((DatasetMissing, BadListing)) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize("name", NAMES)
def test_missing_files_and_prepare_say_where_to_get_them_in_one_line(name, tmp_path):
    assert not dataset_available(name, tmp_path) and needs_download(name)
    calls = [lambda: load_task(name, data_root=tmp_path)]
    if name != "sun397":  # sun397's prepare downloads torchvision's archive: not from a test
        calls.append(lambda: prepare(name, tmp_path))
    for call in calls:
        msg = _error(call)
        assert "\n" not in msg and name in msg and str(tmp_path) in msg and "reprogbench prepare" in msg
        assert name == "sun397" or "https://" in msg  # the ones fetched by hand: where from


def test_prepare_returns_the_folder_when_the_files_are_there(written):
    root = written[0]
    assert [prepare(n, root) for n in ("stanford_cars", "ucf101", "isic", "fmow")] == [
        root / "stanford_cars", root / "ucf101", root / "isic", root / "fmow_v1.1"]
    assert "kaggle.com" in _error(lambda: prepare("stanford_cars", root / "nothing"))


def test_a_split_file_naming_a_missing_image_fails_in_one_line(tmp_path):
    write_ucf101(tmp_path)
    split = tmp_path / "ucf101" / "split_zhou_UCF101.json"
    coop = json.loads(split.read_text())
    coop["test"].append(["Action_000/v_gone.jpg", 0, "Action_000"])
    split.write_text(json.dumps(coop))
    msg = _error(lambda: load_task("ucf101", data_root=tmp_path, image_size=SIZE))
    assert "1 of" in msg and "v_gone.jpg" in msg and "\n" not in msg


def test_a_wrong_number_of_classes_is_refused(tmp_path):
    write_ucf101(tmp_path, num_classes=100)
    assert "names 100 classes, ucf101 has 101" in _error(lambda: load_task("ucf101", data_root=tmp_path))
    write_stanford_cars(tmp_path, num_classes=195)
    assert "195 classes" in _error(lambda: load_task("stanford_cars", data_root=tmp_path))


def test_isic_images_without_a_metadata_row_are_refused(tmp_path):
    write_isic(tmp_path)
    (tmp_path / "isic" / "data" / "ISIC_9999999.jpg").write_bytes(b"")
    assert "have no row" in _error(lambda: load_task("isic", data_root=tmp_path))


# --------------------------------------------------------------------------- folder:<name>, a user's own folder


def test_a_user_folder_without_test_is_split_stratified(tmp_path):
    truth = write_image_folder(tmp_path / "pets", {"dog": 10, "cat": 10, "bird": 5})
    info = info_under("folder:pets", tmp_path)
    assert (info.num_classes, info.class_names, info.encoded) == (3, ("bird", "cat", "dog"), True)
    t = load_task("folder:pets", data_root=tmp_path, image_size=SIZE)
    assert t.info == info and t.split["test_fraction"] == 0.2
    assert t.split["sizes"] == {"train": 17, "val": 3, "test": 5}
    files, labels = truth.parts["pool"]
    for part in (t.train, t.val, t.test):
        assert part.labels.tolist() == [labels[i] for i in part.source_index.tolist()]
    assert torch.bincount(t.test.labels).tolist() == [1, 2, 2]


def info_under(name: str, root: Path):
    """dataset_info lists a family's folder under the default data root: point that at `root`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPROGBENCH_DATA", str(root))
        return dataset_info(name)


def test_a_user_folder_with_test_uses_it_as_the_official_test(tmp_path):
    truth = write_image_folder(tmp_path / "mine", {"a": 4, "b": 6}, test={"a": 2, "b": 1})
    t = load_task("folder:mine", data_root=tmp_path, image_size=SIZE)
    assert t.split["sizes"]["test"] == 3 and t.split["test_fraction"] is None
    assert t.test.labels.tolist() == truth.parts["test"][1] == [0, 0, 1]
    assert t.split["sizes"]["train"] + t.split["sizes"]["val"] == 10  # the stray notes.txt is not an image
    assert dataset_available("folder:mine", tmp_path) and needs_download("folder:mine")
    assert prepare("folder:mine", tmp_path) == tmp_path / "mine"


def test_user_folder_names_and_errors(tmp_path):
    assert known_task("folder:anything") and known_task("digits+folder:x")  # reads no file
    assert not known_task("folder:") and not known_task("folder:a/b") and not known_task("nope:x")
    with pytest.raises(UnknownName, match="unknown dataset family 'nope'.*folder:"):
        dataset_info("nope:x")
    with pytest.raises(UnknownName, match="folder directly under the data root"):
        load_task("folder:..", data_root=tmp_path)
    msg = _error(lambda: load_task("folder:absent", data_root=tmp_path))
    assert str(tmp_path / "absent" / "train") in msg and "train/<class>/<image>" in msg and "\n" not in msg
    assert not dataset_available("folder:absent", tmp_path)
    write_image_folder(tmp_path / "odd", {"a": 2, "b": 2}, test={"c": 1})
    assert "c are not among the train classes" in _error(lambda: load_task("folder:odd", data_root=tmp_path))
    write_image_folder(tmp_path / "hollow", {"a": 2})
    (tmp_path / "hollow" / "train" / "empty").mkdir()
    assert "empty" in _error(lambda: load_task("folder:hollow", data_root=tmp_path))


# --------------------------------------------------------------------------- in a grid


def test_a_grid_lists_cells_of_missing_user_downloads_as_not_prepared(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("REPROGBENCH_DATA", str(root))
    grid_file = tmp_path / "vp.yaml"
    grid_file.write_text(yaml.safe_dump({
        "name": "vp", "originals": [{"backbone": "smallcnn", "trained_on": "digits", "optional": True}],
        "tasks": ["isic", "ucf101", "digits"], "methods": [{"name": "linear_probe"}], "seeds": [0]}))
    grid = load_grid(grid_file, data_root=root)
    assert {c.task for c in grid.unprepared} == {"isic", "ucf101"}
    assert all("not prepared: dataset" in c.skip_reason for c in grid.unprepared)
    write_isic(root)
    assert {c.task for c in load_grid(grid_file, data_root=root).unprepared} == {"ucf101"}


def test_reprogbench_prepare_says_how_to_get_a_user_download_and_exits_2(tmp_path, capsys):
    from launch.cli import main

    write_image_folder(tmp_path / "mine", {"a": 2, "b": 2})
    assert main(["prepare", "isic", "folder:mine", "--data-root", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    rows = {line.split(None, 3)[1]: line.split(None, 3)[2:] for line in captured.out.splitlines()[2:]}
    assert rows["folder:mine"][0] == "present"
    status, detail = rows["isic"]
    assert status == "missing" and "https://doi.org/10.7910/DVN/DBW86T" in detail and "isic/data/" in detail
    assert detail.endswith("cannot fetch it")  # the whole line, not cut short
    assert "1 of 2 input(s) could not be fetched (isic)" in captured.err


def test_a_grid_names_a_user_folder_by_prefix(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("REPROGBENCH_DATA", str(root))
    grid_file = tmp_path / "mine.yaml"
    grid_file.write_text(yaml.safe_dump({
        "name": "mine", "originals": [{"backbone": "smallcnn", "trained_on": "digits"}],
        "tasks": ["folder:pets"], "methods": [{"name": "linear_probe"}], "seeds": [0]}))
    with pytest.raises(DatasetMissing, match="folder:pets not found.*train/<class>/<image>"):
        load_grid(grid_file, data_root=root)  # the classes are the folder's: none, no grid
    write_image_folder(root / "pets", {"cat": 3, "dog": 3})
    grid = load_grid(grid_file, data_root=root)
    assert [c.task for c in grid.cells if c.method == "linear_probe"] == ["folder:pets"]


def test_the_command_reads_a_user_folder_under_its_own_data_root(tmp_path):
    """`--data-root` is where a `folder:NAME` task's classes are read at grid expansion too, whatever
    $REPROGBENCH_DATA says."""
    from cli_helper import cli

    write_image_folder(tmp_path / "data" / "pets", {"dog": 3, "cat": 3})
    grid = tmp_path / "pets.yaml"
    grid.write_text(yaml.safe_dump({"name": "pets", "originals": [{"backbone": "smallcnn_rgb", "input_size": 32,
                                                                    "methods": ["scratch"]}],
                                    "tasks": ["folder:pets"], "methods": [{"name": "scratch"}]}))
    env = {"REPROGBENCH_DATA": str(tmp_path / "elsewhere")}
    listed = cli("ls", grid, "--data-root", tmp_path / "data", "--results", tmp_path / "r", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "folder:pets" in listed.stdout and "1 cells: 0 done, 1 pending" in listed.stdout
    # without it the folder is looked for under $REPROGBENCH_DATA: one line naming where, exit 2
    missing = cli("ls", grid, "--results", tmp_path / "r", env=env)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert str(tmp_path / "elsewhere" / "pets") in missing.stderr
