"""Kills of a running launch, injected with real signals into real `reprogbench run` subprocesses (issue 19.2,
19.3, 21.2): pool workers die with their launcher, one launch trains a cell at a time, and `ls` / `status` tell
a cell in training from one whose process is gone."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from cli_helper import cli, cli_popen

from bench import checkpoint
from bench.cell_lock import LIVE
from bench.files import cell_dir
from bench.grid import load_grid
from bench.record import read_record

pytestmark = pytest.mark.slow

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # one torch thread a process: tiny cells, shared cores


def grid_file(tmp_path: Path, name: str, epochs: int, seeds: list[int]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""
name: {name}
originals:
  - {{backbone: test_tinycnn, methods: [scratch]}}
tasks: [digits]
methods: [{{name: scratch}}]
hparams: {{batch_size: 32, epochs: {epochs}}}
split: {{max_train: 256}}
seeds: {seeds}
""")
    return path


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        time.sleep(0.05)


def checkpointed(results: Path, grid: str, cells) -> bool:
    return all((cell_dir(results, grid, c.cell_id) / checkpoint.LATEST).is_file() for c in cells)


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def test_kill_9_of_the_launcher_kills_its_workers(tmp_path):
    path = grid_file(tmp_path, "orphans", epochs=200, seeds=[0, 1])
    cells = load_grid(path).cells
    results = tmp_path / "results"
    proc = cli_popen("run", path, "--results", results, "--workers", "2", "--pack", "1", "--no-tracking", env=ENV,
                     start_new_session=True)
    descendants: list[int] = []
    try:
        wait_for(lambda: checkpointed(results, "orphans", cells), proc, "a checkpoint of both cells")
        descendants = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(descendants) >= 2, descendants  # the two workers (and multiprocessing's resource tracker)
        proc.kill()  # SIGKILL of the launcher alone, as `kill -9 PID` does: its workers get no signal from anyone
        proc.wait(timeout=60)
        killed_at = time.monotonic()
        while alive(descendants) and time.monotonic() < killed_at + 30:  # generous: a loaded machine is slow
            time.sleep(0.1)
        survivors = alive(descendants)
        print(f"FIGURE orphans: {len(descendants)} descendant(s) of the killed launcher, {len(survivors)} alive "
              f"{time.monotonic() - killed_at:.1f}s after the kill")
        assert survivors == [], f"processes of the killed launcher still running: {survivors}"
    finally:
        proc.kill()
        for pid in alive(descendants):  # on a failure: the survivors this test started, by pid
            os.kill(pid, signal.SIGKILL)


def mlflow_cell_runs(results: Path, grid: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(grid)
    return client, client.search_runs([experiment.experiment_id], "tags.cell_id != ''")


def test_three_launches_at_once_train_and_log_each_cell_once(tmp_path):
    epochs = 6
    path = grid_file(tmp_path, "thrice", epochs=epochs, seeds=[0, 1, 2])
    cells = load_grid(path).cells
    results = tmp_path / "results"
    launches = [cli_popen("run", path, "--results", results, env=ENV) for _ in range(3)]
    outputs = [proc.communicate(timeout=600) for proc in launches]
    for proc, (_, err) in zip(launches, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
        assert "Traceback" not in err
    everything = "\n".join(out for out, _ in outputs)
    for cell in cells:
        lines = [line for line in everything.splitlines() if f"  {cell.name}  epoch " in line]
        assert len(lines) == epochs, f"{cell.cell_id} trained {len(lines)} epochs across the launches: {lines}"
        record = read_record(cell_dir(results, "thrice", cell.cell_id))
        assert record.done and record.resumed_from_epoch is None
        assert [row.epoch for row in record.history] == list(range(1, epochs + 1))
        assert not (cell_dir(results, "thrice", cell.cell_id) / LIVE).exists()  # released
    skips = everything.count("; skipped")
    assert skips >= 1, "no launch met another's cell in training: the race this test is about did not happen"
    client, runs = mlflow_cell_runs(results, "thrice")
    assert sorted(r.data.tags["cell_id"] for r in runs) == sorted(c.cell_id for c in cells)  # one run per cell
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "epoch/val_acc")
        assert sorted(m.step for m in history) == list(range(1, epochs + 1)), run.data.tags["cell_id"]
    print(f"FIGURE three launches: {len(cells)} cells, {len(runs)} MLflow cell runs, {skips} skip line(s), "
          f"epoch lines per cell {epochs}")


def states_of(path: Path, results: Path, cell_id: str) -> tuple[str, str]:
    """The status `reprogbench ls` and `status` print for one cell (both asked at once): each row's second column,
    detail included."""
    procs = [cli_popen(command, path, "--results", results, env=ENV) for command in ("ls", "status")]
    return tuple(_state(proc, cell_id) for proc in procs)


def _state(proc: subprocess.Popen, cell_id: str) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    row = next(line for line in out.splitlines() if line.startswith(cell_id))
    state = row[len(cell_id):].strip()
    return state.split(")")[0] + ")" if state.startswith("running (") else state.split()[0]


def test_ls_and_status_show_running_then_interrupted_after_kill_9_and_a_rerun_finishes(tmp_path):
    epochs = 200  # ~0.4 s each here: long enough to outlast two CLI calls on a busy machine
    path = grid_file(tmp_path, "live", epochs=epochs, seeds=[0])
    (cell,) = load_grid(path).cells
    results = tmp_path / "results"
    directory = cell_dir(results, "live", cell.cell_id)
    proc = cli_popen("run", path, "--results", results, "--no-tracking", env=ENV, start_new_session=True)
    try:
        wait_for(lambda: (directory / checkpoint.LATEST).is_file(), proc, "a first checkpoint")
        running_ls, running_status = states_of(path, results, cell.cell_id)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert running_ls.startswith("running (epoch ") and running_ls.endswith(f"/{epochs})"), running_ls
    assert running_status.startswith("running (epoch "), running_status
    epoch = int(running_ls.split("epoch ")[1].split("/")[0])
    assert 1 <= epoch < epochs

    assert states_of(path, results, cell.cell_id) == ("interrupted", "interrupted")
    rerun = cli("run", path, "--results", results, "--no-tracking", env=ENV, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "skipped" not in rerun.stdout  # the dead launch's lock was taken over, not obeyed
    record = read_record(directory)
    assert record.done and (record.resumed_from_epoch or 0) >= epoch, rerun.stderr[-3000:]
    assert states_of(path, results, cell.cell_id) == ("done", "done")
    print(f"FIGURE live state: ls said running (epoch {epoch}/{epochs}) then interrupted after kill -9; the rerun "
          f"resumed from epoch {record.resumed_from_epoch} and finished")
