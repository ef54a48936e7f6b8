"""End to end through the real CLI: a tiny grid (pretrain -> ar, linear_probe, scratch) on scikit-learn's digits,
with real MLflow (sqlite), real subprocesses, a real SIGKILL, and real DDP under torchrun (gloo on CPU)."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_helper import cli, cli_popen

from bench.files import CHECKPOINT, MODEL, RESULT, cell_dir
from bench.grid import load_grid
from bench.record import CellRecord, parse_record, read_record
from bench.track import PARENT_RUN, RUN_KIND
from bench.track_names import run_name

pytestmark = pytest.mark.slow

TINY = """
name: tiny
originals:
  - {backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 3}}
tasks: [digits_01]
methods:
  - {name: ar, hparams: {lr: 0.05}}
  - {name: linear_probe}
  - {name: scratch}
hparams: {batch_size: 64, epochs: 3}
seeds: [0]
"""




def write_grid(folder: Path, text: str, name: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny grid run once through `reprogbench run`, tracked in a real MLflow sqlite store."""
    root = tmp_path_factory.mktemp("tiny")
    grid_path = write_grid(root, TINY, "tiny")
    results = root / "results"
    proc = cli("run", grid_path, "--results", results)
    return {"grid_path": grid_path, "grid": load_grid(grid_path), "results": results, "proc": proc}


def records(run) -> dict[str, CellRecord]:
    return {c.cell_id: read_record(cell_dir(run["results"], "tiny", c.cell_id)) for c in run["grid"].cells}


def cell_of(run, method: str):
    return next(c for c in run["grid"].cells if c.method == method)


def test_tiny_grid_runs_every_cell_and_writes_complete_records(tiny_run):
    proc = tiny_run["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = records(tiny_run)
    assert sorted(c.method for c in tiny_run["grid"].cells) == ["ar", "linear_probe", "pretrain", "scratch"]
    for cell in tiny_run["grid"].cells:
        rec = recs[cell.cell_id]
        assert rec.status == "done" and rec.cell_id == cell.cell_id and rec.spec == cell.spec
        history = rec.history
        assert [row.epoch for row in history] == list(range(1, cell.spec["hparams"]["epochs"] + 1))
        # model selection on validation only: the best epoch is the first with the highest val accuracy
        vals = [row.val_acc for row in history]
        assert rec.metrics.best_epoch == vals.index(max(vals)) + 1
        assert rec.metrics.val_acc == max(vals)
        assert 0.0 <= rec.metrics.test_acc <= 100.0
        sizes = rec.split["sizes"]
        assert sizes["train"] > 0 and sizes["val"] > 0 and sizes["test"] > 0
        assert rec.throughput.train_images == sizes["train"] * len(history)
        for key in ("setup_s", "train_s", "eval_s", "total_s"):
            assert getattr(rec.timing, key) >= 0
        assert rec.parameters.trainable <= rec.parameters.total
        assert rec.environment.world_size == 1
    # the pretrain cell's weights are stored by cell_id for its dependants
    pretrain = cell_of(tiny_run, "pretrain")
    assert (cell_dir(tiny_run["results"], "tiny", pretrain.cell_id) / MODEL).is_file()
    # ar learns only the program: one W of the canvas size
    ar = recs[cell_of(tiny_run, "ar").cell_id]
    assert ar.parameters.trainable == 16 * 16 * 1
    # the mlflow beside the Python that ran (on PATH only in an activated venv), not a bare `mlflow`
    assert f"{Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri sqlite:///" in proc.stdout
    assert "http://127.0.0.1:5000/#/experiments/" in proc.stdout and "/runs" in proc.stdout
    for cell in tiny_run["grid"].cells:
        assert cell.cell_id in proc.stdout  # the results table lists every cell


def test_mlflow_runs_mirror_the_records(tiny_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tiny_run['results'].resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is not None
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens its runs table
    everything = client.search_runs([experiment.experiment_id])
    launches = [r for r in everything if r.data.tags.get(RUN_KIND) == "grid_launch"]
    assert len(launches) == 1 and launches[0].info.status == "FINISHED"  # one launch, its cells nested under it
    runs = [r for r in everything if RUN_KIND not in r.data.tags]
    assert {r.data.tags[PARENT_RUN] for r in runs} == {launches[0].info.run_id}
    recs = records(tiny_run)
    assert sorted(r.data.tags["cell_id"] for r in runs) == sorted(recs)
    for run in runs:
        rec = recs[run.data.tags["cell_id"]]
        cell = next(c for c in tiny_run["grid"].cells if c.cell_id == rec.cell_id)
        assert run.info.status == "FINISHED"
        assert run.info.run_name == run_name(cell)  # led by what tells cells apart
        tags = run.data.tags
        assert (tags["grid"], tags["method"], tags["backbone"], tags["new_task"]) == \
            ("tiny", cell.method, cell.backbone, cell.task)
        assert tags["original_task"] == (cell.trained_on or "none")
        assert tags["git_commit"]
        assert run.data.params["hparams.lr"] == str(cell.spec["hparams"]["lr"])
        assert run.data.params["method.name"] == cell.method
        assert run.data.metrics["final/test_acc"] == pytest.approx(rec.metrics.test_acc)
        assert run.data.metrics["energy/total_j"] == pytest.approx(rec.energy.joules)
        assert tags["energy_source"] == rec.energy.source and tags["device_type"] == "cpu"
        val_history = client.get_metric_history(run.info.run_id, "epoch/val_acc")
        assert sorted(m.step for m in val_history) == [row.epoch for row in rec.history]
        assert [m.value for m in sorted(val_history, key=lambda m: m.step)] == \
            pytest.approx([row.val_acc for row in rec.history])


def test_rerun_runs_nothing_and_changes_nothing(tiny_run):
    results = tiny_run["results"]
    before = {p: p.stat().st_mtime_ns for p in results.rglob(RESULT)}
    proc = cli("run", tiny_run["grid_path"], "--results", results)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0 cell(s) run, 4 already done, 0 failed" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in results.rglob(RESULT)} == before
    listing = cli("ls", tiny_run["grid_path"], "--results", results)
    assert "4 cells: 4 done, 0 pending, 0 failed" in listing.stdout


def test_frozen_backbone_is_bit_identical_after_ar_and_linear_probe(tiny_run, tmp_path, monkeypatch):
    """Train ar and linear_probe in-process, capture the model the trainer built, compare with model.pt."""
    import bench.train as train
    import bench.train.setup as setup

    built = []
    real_build = setup.build_models
    monkeypatch.setattr(setup, "build_models", lambda *a, **k: built.extend(real_build(*a, **k)) or built[-1:])
    pretrain = cell_of(tiny_run, "pretrain")
    source = cell_dir(tiny_run["results"], "tiny", pretrain.cell_id)
    original = torch.load(source / MODEL, weights_only=True)
    for method in ("ar", "linear_probe"):
        cell = cell_of(tiny_run, method)
        train.run_cell(cell, tmp_path / method, train.TrainContext(dependency_dirs={pretrain.cell_id: source}))
        backbone_state = built[-1].backbone.state_dict()  # weights and BatchNorm running statistics
        assert backbone_state.keys() == original.keys()
        for key, value in original.items():
            assert torch.equal(backbone_state[key], value), f"{method} changed {key}"
        # and the program / head did train
        learned = built[-1].learned.state_dict()
        assert any(v.abs().sum() > 0 for v in learned.values())


def test_a_killed_cell_resumes_from_its_checkpoint(tmp_path):
    grid_text = TINY.replace("name: tiny", "name: resume").replace("tasks: [digits_01]", "tasks: [squares]")
    grid_text = grid_text.replace("epochs: 3}\nseeds", "epochs: 6}\nseeds").replace("batch_size: 64", "batch_size: 32")
    grid_path = write_grid(tmp_path, grid_text, "resume")
    scratch = next(c for c in load_grid(grid_path).cells if c.method == "scratch")
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    directory = cell_dir(killed, "resume", scratch.cell_id)

    proc = cli_popen("cell", grid_path, scratch.cell_id, "--results", killed, "--no-tracking",
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (directory / CHECKPOINT).is_file():
        assert proc.poll() is None, "the cell ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (directory / RESULT).exists()
    epoch_at_kill = torch.load(directory / CHECKPOINT, weights_only=True)["epoch"]
    assert 1 <= epoch_at_kill < 6

    resumed = cli("run", grid_path, "--results", killed, "--no-tracking", "--filter", "method=scratch")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rec = read_record(directory)
    assert rec.resumed_from_epoch >= epoch_at_kill
    assert [row.epoch for row in rec.history] == [1, 2, 3, 4, 5, 6]

    # the interrupted run ends where an uninterrupted one does: same batches, same weights, same result
    uninterrupted = cli("cell", grid_path, scratch.cell_id, "--results", clean, "--no-tracking")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]
    ref = read_record(cell_dir(clean, "resume", scratch.cell_id))
    assert [r.val_acc for r in rec.history] == pytest.approx([r.val_acc for r in ref.history], abs=1e-9)
    assert [r.train_loss for r in rec.history] == pytest.approx([r.train_loss for r in ref.history],
                                                                      rel=1e-5)
    assert rec.metrics.test_acc == pytest.approx(ref.metrics.test_acc)


# Tolerance for DDP vs one process: the same global batches and the same summed gradient, so only float
# reduction order differs: losses agree to 1e-4 (relative), accuracies to within one validation sample.
DDP_LOSS_RTOL = 1e-4
# finetune's validation loss (eval mode: the running statistics the synced batches built, over a whole pretrained
# network at Adam's lr 1e-4) was measured 3.0e-4 apart; its train loss is within 1e-4. With per-rank statistics
# (before batch_norm.py) this tiny grid's losses were up to 2.3e-3 (scratch) and 1.4e-3 (finetune) apart.
DDP_VAL_LOSS_RTOL = {"finetune": 5e-4}


@pytest.mark.parametrize("method", ["ar", "linear_probe", "scratch", "finetune"])
def test_torchrun_two_ranks_matches_one_process(tiny_run, tmp_path, method):
    """Frozen backbones (ar, linear_probe) and trained BatchNorm (scratch, finetune: statistics synced over ranks)."""
    # the tiny grid with finetune too: the same pretrain cell (its id depends on its own spec only)
    grid_path = write_grid(tmp_path, TINY.replace("  - {name: scratch}", "  - {name: scratch}\n  - {name: finetune}"),
                           "tiny")
    grid = load_grid(grid_path)
    pretrain = next(c for c in grid.cells if c.method == "pretrain")
    cell = next(c for c in grid.cells if c.method == method)
    for root in ("single", "ddp"):
        shutil.copytree(cell_dir(tiny_run["results"], "tiny", pretrain.cell_id),
                        cell_dir(tmp_path / root, "tiny", pretrain.cell_id))
    single = cli("cell", grid_path, cell.cell_id, "--results", tmp_path / "single", "--no-tracking")
    assert single.returncode == 0, single.stderr[-2000:]
    torchrun = Path(sys.executable).parent / "torchrun"
    ddp = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "launch.cli", "cell",
                          str(grid_path), cell.cell_id, "--results", str(tmp_path / "ddp"),
                          "--no-tracking"], capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = read_record(cell_dir(tmp_path / "single", "tiny", cell.cell_id))
    two = read_record(cell_dir(tmp_path / "ddp", "tiny", cell.cell_id))
    assert two.environment.world_size == 2 and one.environment.world_size == 1
    trains_batch_norm = method in ("scratch", "finetune")
    assert (one.environment.batch_norm, two.environment.batch_norm) == (
        ("one process", "synced") if trains_batch_norm else (None, None))
    one_sample = 100.0 / one.split["sizes"]["val"]
    for a, b in zip(one.history, two.history, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=DDP_LOSS_RTOL)
        assert b.val_loss == pytest.approx(a.val_loss, rel=DDP_VAL_LOSS_RTOL.get(method, DDP_LOSS_RTOL))
        assert abs(b.val_acc - a.val_acc) <= one_sample + 1e-9
    assert two.throughput.train_images == one.throughput.train_images


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path):
    grid_path = write_grid(tmp_path, """
name: fails
originals: [{backbone: test_tinycnn, trained_on: digits}]
tasks: [digits]
methods:
  - {name: scratch, hparams: {"optimizer, lr": [[adam, 0.001], [sgd, 1.0e+12]]}}
hparams: {epochs: 2, batch_size: 64}
""", "fails")
    results = tmp_path / "results"
    proc = cli("run", grid_path, "--results", results, "--no-tracking", "--workers", "2")  # the process pool
    assert proc.returncode == 1
    grid = load_grid(grid_path)
    by_lr = {c.spec["hparams"]["lr"]: read_record(cell_dir(results, "fails", c.cell_id)) for c in grid.cells}
    assert by_lr[0.001].status == "done"
    failed = by_lr[1.0e12]
    assert failed.status == "failed"
    assert "diverged at epoch" in failed.error and "try a lower lr" in failed.error
    assert (cell_dir(results, "fails", failed.cell_id) / "error.txt").is_file()
    assert "1 failed" in proc.stdout and failed.cell_id in proc.stderr
    listing = cli("ls", grid_path, "--results", results)
    assert "1 done, 0 pending, 1 failed" in listing.stdout
    # a rerun fills only the holes: the failed cell runs again, the finished one does not
    done_mtime = (cell_dir(results, "fails", by_lr[0.001].cell_id) / RESULT).stat().st_mtime_ns
    again = cli("run", grid_path, "--results", results, "--no-tracking")
    assert "1 cell(s) run, 1 already done, 1 failed" in again.stdout
    assert (cell_dir(results, "fails", by_lr[0.001].cell_id) / RESULT).stat().st_mtime_ns == done_mtime


def test_a_missing_dataset_is_one_line_exit_2_and_nothing_written(tmp_path):
    grid_path = write_grid(tmp_path, """
originals: [{backbone: smallcnn, trained_on: digits}]
tasks: [mnist]
methods: [{name: linear_probe}]
""", "needs_mnist")
    empty = tmp_path / "data"
    empty.mkdir()
    proc = cli("run", grid_path, "--results", tmp_path / "results", "--data-root", empty)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reprogbench: error:")
    assert "dataset(s) mnist" in lines[0] and f"reprogbench prepare {grid_path} --data-root {empty}" in lines[0]
    assert not (tmp_path / "results").exists()


def test_record_is_valid_json_with_provenance(tiny_run):
    rec = parse_record(json.loads((cell_dir(tiny_run["results"], "tiny", cell_of(tiny_run, "ar").cell_id)
                                   / RESULT).read_text()))
    env = rec.environment
    for key in ("torch", "torchvision", "accelerate", "python", "device_type", "git_commit", "hostname"):
        assert getattr(env, key)
    assert rec.split["seed"] == 0 and rec.split["fingerprint"]
    assert rec.depends_on == [cell_of(tiny_run, "pretrain").cell_id]
