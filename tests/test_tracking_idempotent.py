"""A cell's MLflow run is one per cell_id, whatever kill window a launch dies in: a `reprogbench run` subprocess
SIGKILLs itself at a chosen step of the tracking sequence (after creating a cell's run, before an epoch's metrics,
before the final metrics, after creating the launch's run), then a plain rerun on the same sqlite store must
leave exactly one FINISHED run per cell holding every point its record has, no launch run RUNNING, and the
record `synced` only because MLflow was read back and compared."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_helper import REPO, cli

from bench.files import MLFLOW_RUN, cell_dir
from bench.grid import load_grid
from bench.record import read_record
from bench.track_runs import RUN_KIND, expected_points

# Runs `reprogbench run ...` in this process after wrapping one MlflowClient method so that, at the chosen
# step, the process SIGKILLs itself: before or after the real call, as a kill from outside would land there.
KILLER = textwrap.dedent("""
    import os, signal, sys
    from mlflow.tracking import MlflowClient
    from bench.track_runs import RUN_KIND
    window = sys.argv[1]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    create_run, log_batch = MlflowClient.create_run, MlflowClient.log_batch

    def create(self, experiment_id, *args, tags=None, **kwargs):
        run = create_run(self, experiment_id, *args, tags=tags, **kwargs)
        kind = (tags or {}).get(RUN_KIND)
        if (window == "after_cell_run_created" and kind is None) or (window == "after_launch_run" and kind):
            die()
        return run

    def batch(self, run_id, metrics=(), *args, **kwargs):
        keys = {(m.key, m.step) for m in metrics or ()}
        if window == "before_epoch_2_metrics" and ("epoch/val_acc", 2) in keys:
            die()
        if window == "before_final_metrics" and any(key == "final/test_acc" for key, _ in keys):
            die()
        return log_batch(self, run_id, metrics, *args, **kwargs)

    MlflowClient.create_run, MlflowClient.log_batch = create, batch
    from launch.cli import main
    sys.exit(main(sys.argv[2:]))
""")

WINDOWS = ["after_cell_run_created", "before_epoch_2_metrics", "before_final_metrics", "after_launch_run"]


def client_for(results: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")


def all_runs(client, experiment: str) -> list:
    from mlflow.entities import ViewType

    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], run_view_type=ViewType.ALL, max_results=1000)


@pytest.mark.slow
@pytest.mark.parametrize("window", WINDOWS)
def test_a_kill_in_any_tracking_window_leaves_one_complete_run_per_cell(tmp_path, window):
    grid_path = tmp_path / "killed.yaml"
    grid_path.write_text("name: killed\noriginals: [{backbone: test_tinycnn, methods: [scratch]}]\n"
                         "tasks: [digits_01]\nmethods: [{name: scratch}]\nhparams: {batch_size: 64, epochs: 3}\n"
                         "seeds: [0]\n")
    grid, results = load_grid(grid_path), tmp_path / "results"
    (cell,) = grid.cells
    directory = cell_dir(results, grid.name, cell.cell_id)

    killed = subprocess.run([sys.executable, "-c", KILLER, window, "run", str(grid_path), "--results", str(results)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    client = client_for(results)
    before = all_runs(client, grid.name)
    if window == "after_cell_run_created":  # the kill window of the issue: a run, and no id in the cell's folder
        assert not (directory / MLFLOW_RUN).exists() and len(before) == 2
    assert any(r.data.tags.get(RUN_KIND) == "grid_launch" and r.info.status == "RUNNING" for r in before)

    rerun = cli("run", grid_path, "--results", results)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Traceback" not in rerun.stderr + rerun.stdout

    runs = all_runs(client, grid.name)
    cells = [r for r in runs if RUN_KIND not in r.data.tags]
    assert [r.data.tags.get("cell_id") for r in cells] == [cell.cell_id]  # one run for the cell, never two
    (run,) = cells
    record = read_record(directory)
    assert record.done and run.info.status == "FINISHED"
    assert record.mlflow_run_id == run.info.run_id == (directory / MLFLOW_RUN).read_text().strip()
    for key, points in expected_points(record).items():  # every epoch and final figure the record has
        held = {(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)}
        assert set(points) <= held, (key, points, held)
    val_acc = client.get_metric_history(run.info.run_id, "epoch/val_acc")
    assert sorted(m.step for m in val_acc) == [1, 2, 3]  # each epoch once
    assert record.tracking.synced
    launches = [r for r in runs if r.data.tags.get(RUN_KIND) == "grid_launch"]
    assert "RUNNING" not in {r.info.status for r in launches}, [r.info.status for r in launches]
    assert "KILLED" in {r.info.status for r in launches}  # the killed launch's run, closed by the next one
