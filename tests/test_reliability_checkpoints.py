"""Checkpoints survive corruption: each fault is injected into real files, and the reader falls back to the previous
good checkpoint (or restarts) with one line saying so; a cell resumed past a corrupt checkpoint ends as an
uninterrupted run does. Downloaded weights are checked against their published sha256 when they are loaded."""
from __future__ import annotations

import json
import os

import pytest
import torch
from fixtures_weights import torch_hub_path

from bench import checkpoint
from bench.checkpoint import LATEST, PREVIOUS, checksum_path
from bench.grid import load_grid
from bench.models import WeightsMissing, create_backbone
from bench.train import MissingOriginal, TrainContext, checkpoint_epoch, run_cell


def state(epoch: int) -> dict:
    return {"cell_id": "c0ffee000000", "epoch": epoch, "learned": {"w": torch.full((64,), float(epoch))}}


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_bytes(path):
    data = bytearray(path.read_bytes())
    for i in range(100, len(data), 97):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def garbage(path):
    path.write_bytes(b"\x00not a checkpoint\xff" * 50)


def valid_torch_file_wrong_checksum(path):
    torch.save(state(99), path)  # loads fine, but is not what was checksummed


def empty(path):
    path.write_bytes(b"")


class RunsCode:
    def __reduce__(self):  # unpickling would call print("pwned"): weights_only refuses it
        return (print, ("pwned",))


# a pickle that weights_only refuses, with a checksum file that matches it
def pickled_object_with_matching_checksum(path):
    torch.save({"epoch": 2, "obj": RunsCode()}, path)
    data = path.read_bytes()
    import hashlib

    checksum_path(path).write_text(json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                               "epoch": 2}))


FAULTS = [truncate, flip_bytes, garbage, valid_torch_file_wrong_checksum, empty,
          pickled_object_with_matching_checksum]


def test_save_writes_a_checksum_and_keeps_the_previous_checkpoint(tmp_path):
    checkpoint.save(tmp_path, state(1))
    checkpoint.save(tmp_path, state(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [LATEST, PREVIOUS, LATEST + ".sha256", PREVIOUS + ".sha256"])  # no temporary file left behind
    assert checkpoint.verify(tmp_path / LATEST)["epoch"] == 2
    assert checkpoint.verify(tmp_path / PREVIOUS)["epoch"] == 1
    assert torch.load(tmp_path / LATEST, weights_only=True)["epoch"] == 2  # still a plain torch file
    loaded = checkpoint.load(tmp_path)
    assert loaded.state["epoch"] == 2 and loaded.problems == []


class Killed(BaseException):
    """A SIGKILL at a chosen point of a save: nothing after it runs (BaseException: no handler swallows it)."""


@pytest.mark.parametrize("killed_before", range(4))  # a save renames 4 times: 2 rotations, the file, its checksum
def test_a_save_killed_between_any_two_renames_leaves_a_checkpoint_to_resume_from(tmp_path, monkeypatch,
                                                                                   killed_before):
    checkpoint.save(tmp_path, state(1))
    checkpoint.save(tmp_path, state(2))
    replace, calls = os.replace, []

    def replace_until_killed(src, dst):
        calls.append((src, dst))
        if len(calls) > killed_before:
            raise Killed
        replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_until_killed)
    with pytest.raises(Killed):
        checkpoint.save(tmp_path, state(3))
    monkeypatch.setattr(os, "replace", replace)
    loaded = checkpoint.load(tmp_path)
    assert loaded.state is not None and loaded.state["epoch"] in (2, 3), loaded.problems  # never back to epoch 0
    checkpoint.save(tmp_path, state(4))  # and the next save after the restart is whole again
    assert checkpoint.load(tmp_path).state["epoch"] == 4 and checkpoint.verify(tmp_path / LATEST)["epoch"] == 4


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, fault):
    checkpoint.save(tmp_path, state(1))
    checkpoint.save(tmp_path, state(2))
    fault(tmp_path / LATEST)
    loaded = checkpoint.load(tmp_path)
    assert loaded.state["epoch"] == 1 and torch.equal(loaded.state["learned"]["w"], torch.full((64,), 1.0))
    assert len(loaded.problems) == 1 and "\n" not in loaded.problems[0]
    assert LATEST in loaded.problems[0] and "falling back to checkpoint.prev.pt (epoch 1)" in loaded.problems[0]
    assert checkpoint_epoch(tmp_path) == 1  # packing decisions see the epoch the cell will resume from

    # the next save does not rotate the bad file over the good previous one
    checkpoint.save(tmp_path, state(2))
    assert checkpoint.verify(tmp_path / PREVIOUS)["epoch"] == 1 and checkpoint.load(tmp_path).state["epoch"] == 2


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
def test_with_no_good_checkpoint_the_cell_restarts(tmp_path, fault):
    checkpoint.save(tmp_path, state(1))
    checkpoint.save(tmp_path, state(2))
    fault(tmp_path / LATEST)
    fault(tmp_path / PREVIOUS)
    loaded = checkpoint.load(tmp_path)
    assert loaded.state is None and len(loaded.problems) == 2
    assert all("restarting from epoch 0" in p for p in loaded.problems)
    assert checkpoint_epoch(tmp_path) == 0


def test_a_checkpoint_of_another_cell_is_skipped(tmp_path):
    checkpoint.save(tmp_path, state(1))

    def belongs(s):
        if s["cell_id"] != "another":
            raise checkpoint.CorruptCheckpoint(f"{LATEST} belongs to cell {s['cell_id']}, not another")

    loaded = checkpoint.load(tmp_path, check=belongs)
    assert loaded.state is None and "belongs to cell c0ffee000000" in loaded.problems[0]


GRID = """
name: ckpt
originals:
  - {backbone: test_tinycnn, methods: [scratch]}
tasks: [digits]
methods:
  - {name: scratch}
hparams: {batch_size: 64, epochs: 3}
seeds: [0]
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    (root / "ckpt.yaml").write_text(GRID)
    cell = load_grid(root / "ckpt.yaml").cells[0]
    record = run_cell(cell, root / "clean")
    return {"cell": cell, "root": root, "record": record}


@pytest.mark.parametrize("fault", [truncate, valid_torch_file_wrong_checksum], ids=lambda f: f.__name__)
def test_a_cell_resumes_past_a_corrupt_checkpoint_and_ends_as_an_uninterrupted_run(finished, tmp_path, fault,
                                                                                     capsys):
    directory = tmp_path / "cell"
    for name in (LATEST, PREVIOUS):  # the two checkpoints an uninterrupted run leaves: epochs 3 and 2
        for path in (finished["root"] / "clean" / name, checksum_path(finished["root"] / "clean" / name)):
            (directory / path.name).parent.mkdir(parents=True, exist_ok=True)
            (directory / path.name).write_bytes(path.read_bytes())
    fault(directory / LATEST)
    record = run_cell(finished["cell"], directory)
    lines = [line for line in capsys.readouterr().err.splitlines() if "checkpoint" in line]
    assert len(lines) == 1 and "falling back to checkpoint.prev.pt (epoch 2)" in lines[0]
    assert record.resumed_from_epoch == 2 and record.checkpoint_problems == [lines[0].split(": ", 2)[2]]
    clean = finished["record"]
    assert [r.epoch for r in record.history] == [1, 2, 3]
    assert [r.val_acc for r in record.history] == pytest.approx([r.val_acc for r in clean.history])
    assert record.metrics.test_acc == pytest.approx(clean.metrics.test_acc)
    assert checkpoint.verify(directory / LATEST)["epoch"] == 3


# --------------------------------------------------------------------------- downloaded weights


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "torch" / "hub"))
    yield tmp_path / "torch" / "hub"
    torch.hub.set_dir(old)


def test_corrupt_imagenet_weights_are_refused_at_load_naming_prepare(torch_home):
    path = torch_hub_path("resnet18")  # resnet18-f37072fd.pth: torchvision publishes the sha256 prefix
    path.parent.mkdir(parents=True)
    torch.save({"conv1.weight": torch.zeros(1)}, path)  # a file whose sha256 is not f37072fd...
    with pytest.raises(WeightsMissing) as info:
        create_backbone("resnet18", weights="imagenet", input_size=32)
    message = str(info.value)
    assert "sha256" in message and "f37072fd" in message and "reprogbench prepare --weights resnet18" in message
    assert "\n" not in message


PRETRAINED = """
name: orig
originals:
  - {backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 1}}
tasks: [digits]
methods: [{name: linear_probe}]
hparams: {batch_size: 64, epochs: 1}
split: {max_train: 200}
"""


def test_a_corrupt_original_model_is_one_line_naming_the_pretrain_cell(tmp_path):
    (tmp_path / "orig.yaml").write_text(PRETRAINED)
    pretrain, probe = load_grid(tmp_path / "orig.yaml").cells
    run_cell(pretrain, tmp_path / "pretrain")
    model = tmp_path / "pretrain" / "model.pt"
    assert checkpoint.verify(model)["size"] == model.stat().st_size  # written with its checksum
    flip_bytes(model)
    with pytest.raises(MissingOriginal) as info:
        run_cell(probe, tmp_path / "probe", TrainContext(dependency_dirs={pretrain.cell_id: tmp_path / "pretrain"}))
    message = str(info.value)
    assert "is corrupt" in message and f"pretrain cell {pretrain.cell_id}" in message and "\n" not in message
