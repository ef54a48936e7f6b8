"""`--launcher slurm` against a real Slurm: the single-node cluster of slurm/local-cluster (slurmctld + slurmd +
munge from Debian's packages, no accounting), started by this module and stopped after it.

Job arrays, dependencies, a rerun that submits nothing, a failing cell reported with its log, a cell
interrupted by USR2 that resumes from its checkpoint with the uninterrupted metrics, a 2-task DDP cell, and
profiles rejected before anything is queued.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helper import cli

from bench.files import MLFLOW_RUN, cell_dir, read_json, write_json
from bench.grid import load_grid
from bench.record import read_record
from bench.track import PARENT_RUN, RUN_KIND
from bench.train import checkpoint_epoch
from launch.local import RunSettings, execute_cell
from launch.slurm import SLURM_RECORD, cell_states, queue_states, wait

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # every test here starts (or needs) the local Slurm cluster




def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


SMALL = """
name: slurm_small
originals: [{backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 2}}]
tasks: [digits]
methods:
  - {name: ar, mask: ones, hparams: {lr: 0.05}}
  - {name: scratch, hparams: {"optimizer, lr": [[adam, 0.001], [sgd, 1.0e+12]]}}
hparams: {epochs: 2, batch_size: 64}
"""


def without_clock(history):  # time, and energy (measured over that time), differ between runs
    return [{k: v for k, v in row.model_dump().items() if k not in ("elapsed_s", "energy_j")} for row in history]


def test_a_grid_runs_as_job_arrays_and_a_rerun_submits_nothing(slurm_cluster, tmp_path):
    grid_path = write(tmp_path, "slurm_small", SMALL)
    results = tmp_path / "results"
    run = cli("run", grid_path, "--launcher", "slurm", "--profile", "local", "--results", results, "--wait")
    assert run.returncode == 1, run.stderr  # the sgd lr=1e12 cell diverges: exit 1, the others finish
    assert "4 cell(s) submitted" in run.stdout and "submitted array" in run.stdout

    grid = load_grid(grid_path)
    records = {c.cell_id: read_record(cell_dir(results, grid.name, c.cell_id)) for c in grid.cells}
    by_kind = {(c.method, c.spec["hparams"]["lr"]): records[c.cell_id] for c in grid.cells}
    assert {k: r.status for k, r in by_kind.items()} == {
        ("pretrain", 0.001): "done", ("ar", 0.05): "done", ("scratch", 0.001): "done", ("scratch", 1e12): "failed"}
    assert "diverged" in by_kind["scratch", 1e12].error
    ar = next(c for c in grid.cells if c.method == "ar")
    assert records[ar.cell_id].depends_on == list(ar.depends_on)  # ran after its pretrain (a later array)

    # the status table: every cell with its job and a log that exists; the failed one says why
    states = {s.cell.cell_id: s for s in cell_states(grid, grid.cells, results)}
    assert all(Path(s.log).is_file() and s.job_id for s in states.values())
    failed = next(s for s in states.values() if s.state == "failed")
    assert "diverged" in failed.message and "diverged" in Path(failed.log).read_text()
    status = cli("status", grid_path, "--results", results)
    assert status.returncode == 1 and "3 done" in status.stdout and "1 failed" in status.stdout
    assert failed.log in status.stdout

    # every cell is an MLflow run in the grid's experiment, in the sqlite store beside the results
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(grid.name)
    everything = client.search_runs([experiment.experiment_id])
    (launch,) = [r for r in everything if r.data.tags.get(RUN_KIND) == "grid_launch"]
    assert launch.data.tags["launcher"] == "slurm"
    runs = [r for r in everything if RUN_KIND not in r.data.tags]
    assert {r.data.tags[PARENT_RUN] for r in runs} == {launch.info.run_id}  # nested under the submission
    assert sorted(r.data.tags["cell_id"] for r in runs) == sorted(records)
    assert {r.data.tags["cell_id"]: r.info.status for r in runs}[ar.cell_id] == "FINISHED"

    # a rerun of finished cells queues nothing
    again = cli("run", grid_path, "--launcher", "slurm", "--profile", "local", "--results", results,
                "--filter", "method=ar")
    assert again.returncode == 0 and "0 cell(s) submitted in 0 job(s), 2 already done" in again.stdout


SLOW = """
name: slurm_resume
originals: [{backbone: smallcnn, methods: [scratch]}]
tasks: [digits]
methods: [{name: scratch}]
hparams: {epochs: 8, batch_size: 32}
"""


def test_an_interrupted_cell_resumes_from_its_checkpoint_with_the_uninterrupted_metrics(slurm_cluster, tmp_path):
    grid_path = write(tmp_path, "slurm_resume", SLOW)
    grid = load_grid(grid_path)
    (cell,) = grid.cells
    results = tmp_path / "results"
    assert cli("run", grid_path, "--launcher", "slurm", "--profile", "local", "--results", results).returncode == 0
    directory = cell_dir(results, grid.name, cell.cell_id)
    job_id = read_json(directory / SLURM_RECORD)["job_id"]

    deadline = time.monotonic() + 300
    while not (directory / "checkpoint.pt").is_file() or checkpoint_epoch(directory) < 2:
        assert time.monotonic() < deadline, "the cell never reached epoch 2"
        assert read_record(directory) is None, "the cell finished before it could be interrupted"
        time.sleep(0.5)
    # what Slurm sends before a time limit or on preemption; submitit requeues the job
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    states = wait(grid, grid.cells, results, poll_s=1, timeout_s=400)
    assert [s.state for s in states] == ["done"]

    record = read_record(directory)
    assert record.resumed_from_epoch and 2 <= record.resumed_from_epoch < 8
    log = Path(states[0].log).read_text()
    assert f"resuming {cell.name} from epoch {record.resumed_from_epoch}" in log
    assert log.count("attempt") >= 2 and "requeueing" in log  # one log across both attempts (open-mode append)
    assert len(read_json(directory / SLURM_RECORD)["starts"]) == 2

    # the same cell, uninterrupted, in this process with the job's torch threads (a different thread count sums
    # in a different order, so floats differ): identical metrics and history
    alone = tmp_path / "alone"
    outcome = execute_cell(cell, RunSettings(alone, None, None, threads=record.environment.torch_threads))
    assert outcome.status == "done"
    assert record.metrics == outcome.record.metrics
    assert without_clock(record.history) == without_clock(outcome.record.history)

    # the MLflow run went on: one run for the cell, the id kept across the requeue
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    runs = [r for r in client.search_runs([client.get_experiment_by_name(grid.name).experiment_id])
            if RUN_KIND not in r.data.tags]
    assert [r.info.run_id for r in runs] == [(directory / MLFLOW_RUN).read_text().strip()]
    assert len(client.get_metric_history(runs[0].info.run_id, "epoch/val_acc")) >= 8


DDP = """
name: slurm_ddp
originals: [{backbone: test_tinycnn, methods: [scratch]}]
tasks: [digits]
methods: [{name: scratch}]
hparams: {epochs: 2, batch_size: 64}
"""


def test_wait_returns_only_once_a_finished_cells_job_has_left_the_queue(slurm_cluster, tmp_path):
    """A job writes its cell's record before the cell's last MLflow calls (the run FINISHED, its artifacts) and
    before it exits; `--wait` returned on the record, and a caller reading MLflow then saw the run RUNNING (CI)."""
    grid = load_grid(write(tmp_path, "slurm_finishing", SLOW.replace("slurm_resume", "slurm_finishing")
                           .replace("epochs: 8", "epochs: 1")))
    (cell,) = grid.cells
    results = tmp_path / "results"
    assert execute_cell(cell, RunSettings(results, None, None)).status == "done"
    # the cell's job, still in the queue after its record is written (here: a job that outlives the record)
    job_id = subprocess.run(["sbatch", "--parsable", "--partition=local", "--time=5", f"--output={tmp_path}/job.out",
                             "--wrap", "sleep 6"], capture_output=True, text=True, check=True).stdout.strip()
    directory = cell_dir(results, grid.name, cell.cell_id)
    write_json(directory / SLURM_RECORD, {"job_id": job_id, "stdout": str(tmp_path / "job.out"), "starts": ["now"]})
    deadline = time.monotonic() + 60
    while job_id not in queue_states():
        assert time.monotonic() < deadline, "the job never reached the queue"
        time.sleep(0.2)

    states = wait(grid, grid.cells, results, poll_s=0.5, timeout_s=120)
    assert [s.state for s in states] == ["done"]
    assert job_id not in queue_states()  # returned after the job, not on its record


def test_a_two_task_cell_runs_ddp_across_two_slurm_tasks(slurm_cluster, tmp_path):
    grid_path = write(tmp_path, "slurm_ddp", DDP)
    results = tmp_path / "results"
    run = cli("run", grid_path, "--launcher", "slurm", "--profile", "local", "--tasks-per-node", "2",
              "--results", results, "--wait", "--no-tracking")
    assert run.returncode == 0, run.stdout + run.stderr
    (cell,) = load_grid(grid_path).cells
    record = read_record(cell_dir(results, "slurm_ddp", cell.cell_id))
    assert record.status == "done" and record.environment.world_size == 2
    log = Path(read_json(cell_dir(results, "slurm_ddp", cell.cell_id) / SLURM_RECORD)["stdout"])
    assert "2 task(s)" in log.read_text()

    # the plain sbatch template with 2 tasks trains the same cell as one group of 2 ranks, not 2 copies of it
    template = tmp_path / "template"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    submit = subprocess.run(
        ["sbatch", "--parsable", "--wait", "--array=0-0", "--ntasks-per-node=2", "--gpus-per-node=0",
         "--cpus-per-task=1", "--mem=2G", "--time=10", f"--output={tmp_path}/template-%A_%a.out",
         str(REPO / "slurm/templates/cells.sbatch"), str(grid_path), "1", "--results", str(template), "--no-tracking"],
        capture_output=True, text=True, env=env, timeout=600)
    (log,) = tmp_path.glob("template-*.out")
    assert submit.returncode == 0, submit.stderr + log.read_text()
    alone = read_record(cell_dir(template, "slurm_ddp", cell.cell_id))
    assert alone.status == "done" and alone.environment.world_size == 2
    assert log.read_text().count("epoch 1/") == 1  # one rank prints: not two copies of the cell
    assert (alone.environment.torch_threads, record.environment.torch_threads) == (1, 1)  # --cpus-per-task=1
    assert alone.metrics == record.metrics and without_clock(alone.history) == without_clock(record.history)


TWO_ORIGINALS = """
name: slurm_deps
originals:
  - {backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 1}}
  - {backbone: test_tinycnn, trained_on: squares, hparams: {epochs: 1}}
tasks: [digits]
methods: [{name: ar, mask: ones}, {name: scratch}]
hparams: {epochs: 1, batch_size: 64}
"""


def test_a_cell_waits_only_for_the_pretrain_task_it_needs(slurm_cluster, tmp_path):
    grid_path = write(tmp_path, "slurm_deps", TWO_ORIGINALS)
    profile = tmp_path / "held.yaml"  # held: nothing runs, the queue is read and the jobs cancelled
    profile.write_text("partition: local\ntime: 10\ncpus_per_task: 1\nmem_gb: 1\nsbatch: {hold: true}\n")
    results = tmp_path / "results"
    run = cli("run", grid_path, "--launcher", "slurm", "--profile", profile, "--results", results, "--no-tracking")
    try:
        assert run.returncode == 0, run.stderr
        grid = load_grid(grid_path)
        job = {c.cell_id: read_json(cell_dir(results, grid.name, c.cell_id) / SLURM_RECORD)["job_id"]
               for c in grid.cells}
        for cell in grid.cells:
            shown = subprocess.run(["scontrol", "show", "job", job[cell.cell_id]], capture_output=True, text=True,
                                   check=True).stdout
            dependency = shown.split("Dependency=", 1)[1].split()[0]
            expected = ",".join(f"afterany:{job[d]}" for d in cell.depends_on) or "(null)"
            assert dependency.replace("(unfulfilled)", "") == expected, (cell.name, shown)
        assert sum(bool(c.depends_on) for c in grid.cells) == 2  # the two ar cells, one per original
    finally:
        subprocess.run(["scancel", *{j.split("_")[0] for j in job.values()}] if "job" in locals() else ["true"])


@pytest.mark.parametrize("profile, needle", [
    ("partition: local\ngpus: 2\n", "gpus: unknown key"),
    ("partition: local\ntime: '25:99:00'\n", "time"),
    ("partition: local\ntime: 0\n", "between 1 minute and a year"),
    ("partition: local\nnodes: 0\n", "nodes"),
])
def test_an_invalid_profile_is_rejected_before_anything_is_submitted(slurm_cluster, tmp_path, profile, needle):
    grid_path = write(tmp_path, "slurm_small", SMALL)
    bad = tmp_path / "bad.yaml"
    bad.write_text(profile)
    before = set(queue_states())
    run = cli("run", grid_path, "--launcher", "slurm", "--profile", bad, "--results", tmp_path / "results")
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and needle in lines[0] and str(bad) in lines[0]
    assert set(queue_states()) <= before  # nothing new queued
    assert not (tmp_path / "results" / "slurm_small").exists()


def test_the_plain_sbatch_template_runs_one_cell_per_array_task(slurm_cluster, tmp_path):
    grid_path = write(tmp_path, "slurm_small", SMALL)
    results = tmp_path / "results"
    grid = load_grid(grid_path)
    wave1 = cli("ls", grid_path, "--wave", "1", "--ids").stdout.split()
    assert sorted(wave1) == sorted(c.cell_id for c in grid.cells if not c.depends_on)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    # the template asks for a GPU; this cluster has none, so the command line overrides it, as a user would
    submit = subprocess.run(
        ["sbatch", "--parsable", "--wait", f"--array=0-{len(wave1) - 1}", "--gpus-per-node=0", "--cpus-per-task=1",
         "--mem=2G", "--time=10", f"--output={tmp_path}/slurm-%A_%a.out", str(REPO / "slurm/templates/cells.sbatch"),
         str(grid_path), "1", "--results", str(results), "--no-tracking"],
        capture_output=True, text=True, env=env, timeout=600)
    records = {c: read_record(cell_dir(results, grid.name, c)) for c in wave1}
    statuses = sorted(r.status if r else "missing" for r in records.values())
    assert statuses == ["done", "done", "failed"], submit.stderr  # the sgd lr=1e12 cell diverges
    logs = sorted(tmp_path.glob("slurm-*.out"))
    assert len(logs) == len(wave1) and all("reprogbench: task" in p.read_text() for p in logs)
    # the job asked for 1 CPU per task: torch ran 1 thread, whatever the node has
    assert {r.environment.torch_threads for r in records.values() if r and r.environment} == {1}
