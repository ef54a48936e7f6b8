"""`reprogbench prepare` (fetch + verify what a grid needs, report present / fetched / missing) and the
preflight of `run` (every missing input listed at once, before any cell starts)."""
from __future__ import annotations

import torch
import torchvision
from fixtures_data import write_mnist_idx
from fixtures_weights import put_in_hf_cache, torch_hub_path

from bench.grid import load_grid
from bench.models.weights import verify_weights, weights_file, weights_path
from launch.cli import main
from launch.preflight import Inputs

TABLE_5_1_INPUTS = {"caltech101", "caltech256_reduced", "resnet50v2", "resnet101v2", "mobilenet_v1",
                    "mobilenet_v2", "vgg16", "vgg19"}


def table_rows(out: str) -> dict[str, tuple[str, str]]:
    """name -> (status, detail) from prepare's table."""
    rows = {}
    for line in out.splitlines()[2:]:
        kind, name, status, detail = line.split(None, 3)
        rows[name] = (status, detail)
    return rows


def test_the_inputs_of_a_grid_are_its_datasets_and_imagenet_backbones():
    inputs = Inputs.of(load_grid("thesis_table_3_1").cells)
    assert inputs.datasets == ("caltech101", "cifar10", "cifar100", "fashion_mnist", "mnist", "mnist_01")
    assert inputs.weights == ("resnet50v2",)  # the from-scratch originals are pretrained here, not downloaded
    assert Inputs.of(load_grid("thesis_table_5_1_pytorch").cells).weights == (
        "mobilenet_v1", "mobilenet_v2", "resnet101v2", "resnet50v2", "vgg16", "vgg19")


def test_prepare_offline_reports_every_input_missing_and_exits_2(tmp_path, caches, offline, capsys):
    weights_dir = tmp_path / "weights"
    code = main(["prepare", "thesis_table_5_1_pytorch", "--data-root", str(tmp_path / "data"),
                 "--weights-dir", str(weights_dir)])
    captured = capsys.readouterr()
    rows = table_rows(captured.out)
    assert code == 2 and set(rows) == TABLE_5_1_INPUTS
    assert all(status == "missing" for status, _ in rows.values())
    assert rows["resnet50v2"][1].startswith("cannot reach huggingface.co")  # probed once, not retried for minutes
    assert rows["vgg16"][1].startswith("cannot reach download.pytorch.org")
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith("reprogbench: error: 8 of 8 input(s) could not be fetched") and "vgg19" in last
    assert not any(p.is_file() for p in weights_dir.rglob("*"))  # nothing half-written


def test_prepare_reports_present_inputs_and_checks_weights_checksums(tmp_path, caches, no_network, capsys):
    write_mnist_idx(tmp_path / "data")
    snapshot = put_in_hf_cache(caches, weights_file("mobilenet_v1").repo, "model.safetensors",
                               {"w": torch.arange(6.0)})
    args = ["prepare", "mnist_01", "--weights", "mobilenet_v1", "--data-root", str(tmp_path / "data")]
    assert main(args) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows["mnist_01"][0] == "present" and rows["mobilenet_v1"] == ("present", f"{snapshot} (sha256 matches)")

    blob = snapshot.resolve()
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")  # one byte changed: a corrupt download
    assert main(args) == 2
    status, detail = table_rows(capsys.readouterr().out)["mobilenet_v1"]
    assert status == "missing" and detail.startswith("sha256 mismatch")


def test_torchvision_weights_are_checked_against_the_hash_in_their_name(caches, no_network):
    path = torch_hub_path("vgg19")  # vgg19-dcbb9e9d.pth
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    assert weights_path("vgg19") == path
    try:
        verify_weights("vgg19")
    except ValueError as e:
        assert "dcbb9e9d" in str(e) and "prepare --weights vgg19" in str(e)
    else:
        raise AssertionError("a file whose sha256 does not start with the published prefix passed")


def test_prepare_rejects_what_is_neither_a_grid_nor_a_dataset(tmp_path, capsys):
    assert main(["prepare", "tabel_3_1", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tabel_3_1" in err[0] and "mnist" in err[0]


def test_run_lists_every_missing_input_before_starting_any_cell(tmp_path, caches, capsys):
    results, data = tmp_path / "results", tmp_path / "empty"
    code = main(["run", "thesis_table_5_1_pytorch", "--results", str(results), "--data-root", str(data),
                 "--no-tracking"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    for name in TABLE_5_1_INPUTS:
        assert name in err[0]
    assert f"reprogbench prepare thesis_table_5_1_pytorch --data-root {data}" in err[0]
    assert not results.exists()
