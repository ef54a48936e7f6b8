"""Interrupts on `reprogbench run`, injected with real signals into a real subprocess: Ctrl-C (SIGINT) and SIGTERM
stop cleanly (checkpoint saved, records consistent, exit 130 / 143, no traceback) and the same command continues
where it stopped; `kill -9` of a pool worker loses at most the epoch in progress."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from cli_helper import cli, cli_popen

from bench import checkpoint
from bench.files import ERROR, MLFLOW_RUN, RESULT, cell_dir
from bench.grid import load_grid
from bench.record import read_record

pytestmark = pytest.mark.slow

GRID = """
name: intr
originals:
  - {backbone: test_tinycnn, methods: [scratch]}
tasks: [digits]
methods: [{name: scratch}]
hparams: {batch_size: 32, epochs: 12}
split: {max_train: 256}
seeds: [0, 1]
"""


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # one torch thread a process: tiny cells, shared cores


def start(grid: Path, results: Path, *extra: str) -> subprocess.Popen:
    return cli_popen("run", grid, "--results", results, *extra, env=ENV,
                     start_new_session=True)  # its own process group, as a terminal gives a command


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        time.sleep(0.02)


def epochs_on_disk(results: Path, cells) -> dict[str, int]:
    """cell_id -> epoch of its newest good checkpoint, for cells that have one and are not done."""
    out = {}
    for c in cells:
        directory = cell_dir(results, "intr", c.cell_id)
        if read_record(directory) is None and (directory / checkpoint.LATEST).is_file():
            out[c.cell_id] = checkpoint.good_epoch(directory)
    return out


def assert_consistent(results: Path, cells) -> tuple[int, int]:
    """No half-written file, no failed record, no error file; -> (done, pending) on disk."""
    done = 0
    for c in cells:
        directory = cell_dir(results, "intr", c.cell_id)
        assert not list(directory.glob(".*.tmp")), f"a temporary file was left in {directory}"
        assert not (directory / ERROR).exists()
        record = read_record(directory)
        assert record is None or record.done, record
        done += record is not None
        if (directory / checkpoint.LATEST).is_file():
            assert checkpoint.load(directory).problems == []
    return done, len(cells) - done


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "intr.yaml"
    path.write_text(GRID)
    return path, load_grid(path).cells


@pytest.mark.parametrize("signum, workers", [(signal.SIGINT, "1"), (signal.SIGINT, "2"), (signal.SIGTERM, "2")],
                         ids=["ctrl-c-in-process", "ctrl-c-pool", "sigterm-pool"])
def test_a_signal_stops_cleanly_and_the_same_command_continues(grid, tmp_path, signum, workers):
    path, cells = grid
    results = tmp_path / "results"
    args = ("--workers", workers)
    proc = start(path, results, *args)
    wait_for(lambda: epochs_on_disk(results, cells), proc, "a first checkpoint")
    if signum == signal.SIGINT:  # Ctrl-C in a terminal reaches the whole process group: parent and workers
        os.killpg(proc.pid, signum)
    else:  # `kill PID`: the parent only; it forwards the stop to its workers
        proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, err[-3000:]
    assert "Traceback" not in err and "Traceback" not in out
    done, pending = assert_consistent(results, cells)
    assert pending >= 1
    assert f"interrupted: {done} cell(s) done, {pending} pending; rerun the same command to continue" in err
    stopped_at = epochs_on_disk(results, cells)
    assert stopped_at and all(1 <= e < 12 for e in stopped_at.values())
    runs = {c: (cell_dir(results, "intr", c) / MLFLOW_RUN).read_text() for c in stopped_at}
    statuses = mlflow_statuses(results)  # an interrupted cell's run is KILLED, not FAILED
    assert {statuses[c] for c in stopped_at} == {"KILLED"} and "FAILED" not in statuses.values()

    rerun = cli("run", path, "--results", results, *args, timeout=600, env=ENV)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert assert_consistent(results, cells) == (len(cells), 0)
    for cell_id, epoch in stopped_at.items():
        record = read_record(cell_dir(results, "intr", cell_id))
        assert record.resumed_from_epoch == epoch  # nothing it had trained was lost
        assert [row.epoch for row in record.history] == list(range(1, 13))
        assert record.mlflow_run_id == runs[cell_id]  # the same MLflow run continued: no duplicate
    statuses = mlflow_statuses(results)
    assert sorted(statuses.values()).count("FINISHED") == len(cells) and len(statuses) == len(cells)
    resumed = {c: read_record(cell_dir(results, "intr", c)).resumed_from_epoch for c in stopped_at}
    print(f"FIGURE {signal.Signals(signum).name} workers={workers}: exit {proc.returncode}, {done} done and "
          f"{pending} pending at the stop, stopped at epochs {sorted(stopped_at.values())}, resumed from "
          f"{sorted(resumed.values())}, MLflow runs {len(statuses)} for {len(cells)} cells, all FINISHED")


def mlflow_statuses(results: Path) -> dict[str, str]:
    """cell_id -> MLflow run status for the grid's cell runs (launch runs excluded)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("intr")
    runs = client.search_runs([experiment.experiment_id], "tags.cell_id != ''")
    return {r.data.tags["cell_id"]: r.info.status for r in runs}


def worker_pids(parent: int) -> list[int]:
    """The pool's worker processes (multiprocessing's spawn children, not its resource tracker)."""
    return [p.pid for p in psutil.Process(parent).children()
            if "spawn_main" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())]


def test_kill_9_of_a_worker_loses_at_most_the_epoch_in_progress(grid, tmp_path):
    path, cells = grid
    results = tmp_path / "results"
    proc = start(path, results, "--workers", "2", "--no-tracking")
    wait_for(lambda: any(e >= 1 for e in epochs_on_disk(results, cells).values()), proc, "a first checkpoint")
    before = epochs_on_disk(results, cells)
    wait_for(lambda: len(worker_pids(proc.pid)) == 2, proc, "two workers")
    os.kill(worker_pids(proc.pid)[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err and "Traceback" not in out
    lost = re.findall(r"^lost: (\w{12}) .*: its worker process died", err, re.M)
    assert lost, err[-3000:]
    assert_consistent(results, cells)
    at_kill = epochs_on_disk(results, cells)

    rerun = cli("run", path, "--results", results, "--workers", "2", "--no-tracking", timeout=600, env=ENV)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert assert_consistent(results, cells) == (len(cells), 0)
    for cell_id, epoch in at_kill.items():
        record = read_record(cell_dir(results, "intr", cell_id))
        assert record.resumed_from_epoch == epoch >= before.get(cell_id, 0)
        assert [row.epoch for row in record.history] == list(range(1, 13))
    assert (cell_dir(results, "intr", lost[0]) / RESULT).is_file()
    print(f"FIGURE kill -9: exit {proc.returncode}, lost {len(lost)} cell(s), checkpoints before the kill "
          f"{sorted(before.values())}, after it {sorted(at_kill.values())}, resumed from "
          f"{sorted(read_record(cell_dir(results, 'intr', c)).resumed_from_epoch for c in at_kill)}")


def test_a_killed_writers_temporary_file_is_deleted_when_its_cell_runs_again(grid, tmp_path):
    # what kill -9 in the middle of a checkpoint save leaves: atomic_write's temporary file, never renamed
    path, cells = grid
    cell = cells[0]
    results = tmp_path / "results"
    directory = cell_dir(results, "intr", cell.cell_id)
    directory.mkdir(parents=True)
    leftover = directory / f".{checkpoint.LATEST}.k1lled.tmp"
    leftover.write_bytes(b"half a checkpoint")
    elsewhere = cell_dir(results, "intr", cells[1].cell_id) / leftover.name  # a cell this run does not claim
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_bytes(b"not ours")
    run = cli("run", path, "--results", results, "--no-tracking", "--filter", f"seed={cell.seed}", env=ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not leftover.exists() and elsewhere.exists()
