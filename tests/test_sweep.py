"""`reprogbench sweep`: search spaces checked before Ray starts, and real sweeps on a real local Ray (2 CPUs):
ASHA stopping weak trials, MLflow parent/child runs read back, the best config re-run once as a cell, a driver
killed with SIGKILL and resumed, Optuna, and a Ray cluster started inside a job of the local Slurm."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helper import cli, cli_popen

from bench.files import RESULT, cell_dir, read_json
from bench.grid import GridError, load_grid, override_cell, parse_space, with_overrides
from bench.methods import METHODS
from bench.record import read_record
from bench.track import RUN_KIND
from bench.train import checkpoint_epoch
from launch.sweep_records import SUMMARY, TRIALS, SweepOptions, best_trial, sweep_dir

REPO = Path(__file__).resolve().parent.parent

TINY = """
name: sweepy
originals: [{backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 3}}]
tasks: [digits_01]
methods:
  - name: ar
    hparams: {lr: 0.05}
    # half the configs cannot learn (lr 1e-6 stays at chance): ASHA has weak trials to stop
    search: {lr: {choice: [1.0e-6, 0.1]}, lam: {loguniform: [1.0e-6, 1.0e-2]}}
  - {name: linear_probe}
hparams: {batch_size: 64, epochs: EPOCHS}
"""


def write_grid(folder: Path, epochs: int = 4, text: str = TINY) -> Path:
    path = folder / "sweepy.yaml"
    path.write_text(text.replace("EPOCHS", str(epochs)))
    return path




def ar_cell(grid_path: Path):
    return next(c for c in load_grid(grid_path).cells if c.method == "ar")


def grid_with_search(tmp_path: Path, search: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(f"""
originals: [{{backbone: smallcnn, trained_on: digits}}]
tasks: [digits]
methods: [{{name: ar, input_size: 16, search: {search}}}]
""")
    return path


# --------------------------------------------------------------------------- search spaces (no Ray)


@pytest.mark.parametrize("search, expected", [
    ("{learning_rate: {loguniform: [1.0e-4, 0.1]}}", ["search.learning_rate: unknown parameter", "lr", "lam"]),
    ("{lr: {loguniform: [0.1, 1.0e-4]}}", ["search.lr.loguniform: low 0.1 is above high 0.0001"]),
    ("{lr: {loguniform: [0, 0.1]}}", ["low must be above 0", "use uniform"]),
    ("{lr: {uniform: [0.1, 0.1]}}", ["low equals high"]),
    ("{lr: {normal: [0, 1]}}", ["search.lr: give one of loguniform, uniform, int, choice"]),
    ("{lr: {loguniform: [1e-4, 0.1]}}", ["two numbers", "write 1.0e-4"]),
    ("{input_size: {int: [8.5, 12]}}", ["search.input_size.int: takes two integers"]),
    ("{label_map: {choice: []}}", ["choice: takes a non-empty list"]),
    ("{label_map: {choice: [first_k, bogus]}}", ["search.label_map: 'bogus' is not a valid value"]),
    ("{input_size: {int: [8, 40]}}", ["search.input_size: 40 makes a cell that cannot run", "exceeds the 28px"]),
    ("{batch_size: {choice: [0, 64]}}", ["search.batch_size: 0 is not a valid value"]),
    ("[lr]", ["a search space maps parameters to distributions"]),
])
def test_an_invalid_search_space_is_one_line_naming_the_parameter(tmp_path, search, expected):
    with pytest.raises(GridError) as err:
        load_grid(grid_with_search(tmp_path, search))
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "bad.yaml"))
    for part in expected:
        assert part in message, message


def test_every_method_default_space_is_valid_and_pretrain_is_never_swept():
    from bench.grid import searchable

    swept = [name for name in METHODS.names() if METHODS.get(name).search_space]
    assert set(swept) == {"ar", "blackbox", "finetune", "linear_probe", "scratch"}
    for name in swept:
        space = parse_space(METHODS.get(name).search_space, searchable(name), name)
        assert "lr" in space and all(len(d) == 1 for d in space.values())
    grid = load_grid("demo")
    assert all(c.search is None for c in grid.cells if c.method == "pretrain")
    assert all(c.search == parse_space(METHODS.get(c.method).search_space, searchable(c.method), "x")
               for c in grid.cells if c.method != "pretrain")


def test_a_search_space_is_not_part_of_the_cell_id(tmp_path):
    with_space = load_grid(write_grid(tmp_path))
    without = load_grid(write_grid(tmp_path, text=TINY.replace("    search:", "    # search:")))
    assert [c.cell_id for c in with_space.cells] == [c.cell_id for c in without.cells]
    ar = next(c for c in with_space.cells if c.method == "ar")
    assert ar.search == {"lr": {"choice": [1e-6, 0.1]}, "lam": {"loguniform": [1e-6, 1e-2]}}
    assert next(c for c in without.cells if c.method == "ar").search == parse_space(
        METHODS.get("ar").search_space, ["lr", "lam", "batch_size"], "ar")  # the method's default space


def test_an_override_makes_its_own_cell_and_changes_only_what_it_names(tmp_path):
    base = ar_cell(write_grid(tmp_path))
    tuned = override_cell(base, {"lr": 0.1, "lam": 0.003})
    assert tuned.cell_id != base.cell_id and tuned.depends_on == base.depends_on
    assert tuned.spec["hparams"] == {**base.spec["hparams"], "lr": 0.1}
    assert tuned.spec["method"] == {**base.spec["method"], "lam": 0.003}
    assert {k: v for k, v in tuned.spec.items() if k not in ("hparams", "method")} == \
        {k: v for k, v in base.spec.items() if k not in ("hparams", "method")}
    assert override_cell(base, {"lr": 0.1, "lam": 0.003}).cell_id == tuned.cell_id  # stable
    assert "lam=0.003" in tuned.name and "lr=0.1" in tuned.name
    with pytest.raises(GridError, match="warp: not a hyperparameter or a parameter of ar"):
        with_overrides(base.spec, {"warp": 9})


def test_ray_space_samples_within_bounds_and_int_includes_both_ends():
    from launch.ray_cluster import ray_space

    space = ray_space({"input_size": {"int": [12, 13]}, "lr": {"loguniform": [1e-4, 1e-1]},
                       "label_map": {"choice": ["first_k", "random"]}, "weight_decay": {"uniform": [0, 1e-3]}})
    ints = set(space["input_size"].sample(size=200))
    assert ints == {12, 13}
    lrs = space["lr"].sample(size=200)
    assert all(1e-4 <= v <= 1e-1 for v in lrs) and min(lrs) < 1e-3 < max(lrs)  # log-uniform reaches each decade
    assert set(space["label_map"].sample(size=100)) == {"first_k", "random"}
    assert all(0 <= v <= 1e-3 for v in space["weight_decay"].sample(size=100))


def test_the_best_trial_is_chosen_on_validation_and_ties_go_to_the_cheaper_trial():
    trials = [{"trial_id": "a", "val_acc": 90.0, "epochs": 4}, {"trial_id": "b", "val_acc": 95.0, "epochs": 4},
              {"trial_id": "c", "val_acc": 95.0, "epochs": 2}, {"trial_id": "d", "val_acc": None, "epochs": 0}]
    assert best_trial(trials)["trial_id"] == "c"
    assert best_trial([{"trial_id": "d", "val_acc": None, "epochs": 0}]) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"samples": 0}, "--samples 0"), ({"samples": 2, "scheduler": "hyperband"}, "--scheduler"),
    ({"samples": 2, "max_concurrent": 0}, "--max-concurrent 0"), ({"samples": 2, "cpus_per_trial": 0},
                                                                   "--cpus-per-trial"),
])
def test_sweep_options_are_checked(kwargs, message):
    with pytest.raises(GridError, match=message):
        SweepOptions(**kwargs)


def test_an_invalid_space_is_rejected_before_ray_is_even_imported(tmp_path):
    grid = grid_with_search(tmp_path, "{lr: {loguniform: [0.1, 1.0e-4]}}")
    code = ("import sys; from launch.cli import main; "
            f"rc = main(['sweep', {str(grid)!r}, '--samples', '4', '--results', {str(tmp_path / 'r')!r}]); "
            "print('RAY' if 'ray' in sys.modules else 'NO_RAY', rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.stdout.split()[-2:] == ["NO_RAY", "2"], proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "low 0.1 is above high 0.0001" in err[0]
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- real sweeps


@pytest.fixture(scope="module")
def asha_sweep(tmp_path_factory):
    """6 trials of the tiny ar cell with ASHA on a local Ray of this machine's 2 CPUs, tracked in MLflow."""
    root = tmp_path_factory.mktemp("asha")
    grid_path = write_grid(root)
    results = root / "results"
    proc = cli("sweep", grid_path, "--filter", "method=ar", "--samples", 6, "--results", results)
    cell = ar_cell(grid_path)
    summary = read_json(sweep_dir(results, cell.grid, cell.cell_id) / SUMMARY)
    return {"proc": proc, "grid_path": grid_path, "results": results, "cell": cell, "summary": summary}


def mlflow_runs(results: Path, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)


@pytest.mark.slow
def test_a_sweep_runs_its_trials_through_the_trainer_and_asha_stops_weak_ones(asha_sweep):
    proc, summary = asha_sweep["proc"], asha_sweep["summary"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert summary["status"] == "done" and summary["options"]["scheduler"] == "asha"
    trials = summary["trials"]
    assert len(trials) == 6 and len({t["trial_id"] for t in trials}) == 6
    assert sum(line.startswith("  trial ") for line in proc.stdout.splitlines()) == 6  # a line per trial
    assert all(t["config"]["lr"] in (1e-6, 0.1) and 1e-6 <= t["config"]["lam"] <= 1e-2 for t in trials)
    stopped = [t for t in trials if t["state"].startswith("stopped")]
    assert stopped and all(t["epochs"] < 4 for t in stopped)  # ASHA ended some before the budget
    folder = sweep_dir(asha_sweep["results"], "sweepy", asha_sweep["cell"].cell_id) / TRIALS
    for t in trials:
        if t["state"] != "done":
            continue
        record = read_record(folder / t["trial_id"])  # the trainer's own record, as a cell writes it
        assert [row.epoch for row in record.history] == [1, 2, 3, 4]
        assert record.spec == with_overrides(asha_sweep["cell"].spec, t["config"])
        # selection on validation only: a trial never reads the test split
        assert record.metrics.test_acc is None and record.metrics.test_loss is None
        assert record.metrics.val_acc == t["val_acc"] == max(r.val_acc for r in record.history)


@pytest.mark.slow
def test_the_best_trial_is_rerun_once_as_a_cell_and_recorded_beside_the_recipe(asha_sweep):
    summary, results, base = asha_sweep["summary"], asha_sweep["results"], asha_sweep["cell"]
    best = summary["best"]
    assert best["val_acc"] == max(t["val_acc"] for t in summary["trials"] if t["val_acc"] is not None)
    tuned = summary["tuned"]
    record = read_record(cell_dir(results, "sweepy", tuned["cell_id"]))
    assert record.status == "done" and record.spec == with_overrides(base.spec, best["config"])
    assert record.cell_id == override_cell(base, best["config"]).cell_id
    assert tuned["test_acc"] == record.metrics.test_acc is not None
    # the same config, seed and trainer give the same epochs the trial saw
    trial = read_record(sweep_dir(results, "sweepy", base.cell_id) / TRIALS / best["trial_id"])
    assert [r.val_acc for r in record.history] == pytest.approx([r.val_acc for r in trial.history])
    # the recipe cell itself was not run by the sweep, and the table says so
    assert read_record(cell_dir(results, "sweepy", base.cell_id)) is None
    row = next(line for line in asha_sweep["proc"].stdout.splitlines() if line.startswith(base.cell_id))
    assert "not run" in row and tuned["cell_id"] in row and f"{tuned['test_acc']:.2f}" in row
    assert f"{best['val_acc']:.2f}" in row and f"lr={best['config']['lr']}" in row


@pytest.mark.slow
def test_mlflow_shows_the_sweep_as_a_parent_run_with_its_trials_as_children(asha_sweep):
    summary = asha_sweep["summary"]
    runs = mlflow_runs(asha_sweep["results"], "sweepy")
    parents = [r for r in runs if r.data.tags.get(RUN_KIND) == "sweep"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.tags["sweep_of"] == asha_sweep["cell"].cell_id and parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert all(r.data.tags[RUN_KIND] == "sweep_trial" for r in children)  # the report never takes them for cells
    assert sorted(r.data.tags["trial_id"] for r in children) == sorted(t["trial_id"] for t in summary["trials"])
    assert all(r.info.status == "FINISHED" for r in children)  # stopped trials are closed too, none left RUNNING
    best = [r for r in children if r.data.tags.get("best_trial") == "true"]
    assert [r.info.run_id for r in best] == [summary["best"]["mlflow_run_id"]]
    states = {r.data.tags["trial_id"]: r.data.tags["trial_state"] for r in children}
    assert {states[t["trial_id"]] for t in summary["trials"] if t["state"].startswith("stopped")} == {"stopped early"}
    assert all("epoch/val_acc" in r.data.metrics for r in children)
    assert parent.data.metrics["best_val_acc"] == pytest.approx(summary["best"]["val_acc"])
    assert parent.data.metrics["tuned_test_acc"] == pytest.approx(summary["tuned"]["test_acc"])
    tuned = [r for r in runs if r.data.tags.get("tuned_from") == asha_sweep["cell"].cell_id]
    assert len(tuned) == 1 and tuned[0].data.metrics["final/test_acc"] == pytest.approx(summary["tuned"]["test_acc"])
    assert tuned[0].data.tags["sweep_trial"] == summary["best"]["trial_id"]


@pytest.mark.slow
def test_a_finished_sweep_is_not_run_again(asha_sweep):
    before = len(mlflow_runs(asha_sweep["results"], "sweepy"))
    proc = cli("sweep", asha_sweep["grid_path"], "--filter", "method=ar", "--samples", 6,
               "--results", asha_sweep["results"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "swept before, nothing to do" in proc.stdout and "Ray" not in proc.stderr
    assert len(mlflow_runs(asha_sweep["results"], "sweepy")) == before
    other = cli("sweep", asha_sweep["grid_path"], "--filter", "method=ar", "--samples", 8,
                "--results", asha_sweep["results"])
    assert other.returncode == 2 and "rerun with those options" in other.stderr.strip().splitlines()[-1]


def _trial_workers_gone(timeout_s: float = 60) -> None:
    """Wait until no Ray trial worker of ours is left (they die with the driver they belong to)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        if "ImplicitFunc" not in ps and "run_trial" not in ps:
            return
        time.sleep(1)


@pytest.mark.slow
def test_a_sweep_whose_driver_is_killed_resumes_without_rerunning_finished_trials(tmp_path):
    grid_path = write_grid(tmp_path, epochs=8)
    results = tmp_path / "results"
    args = ["sweep", grid_path, "--filter", "method=ar", "--samples", 4, "--scheduler", "fifo",
            "--max-concurrent", 1, "--results", results]
    cell = ar_cell(grid_path)
    trials = sweep_dir(results, "sweepy", cell.cell_id) / TRIALS
    driver = cli_popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while len(list(trials.glob(f"*/{RESULT}"))) < 2:
            assert driver.poll() is None and time.monotonic() < deadline, "the sweep ended before it was killed"
            time.sleep(0.5)
        time.sleep(3)  # Ray Tune saves its experiment state every 2 s (TUNE_GLOBAL_CHECKPOINT_S)
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    _trial_workers_gone()
    finished = {p.parent.name: p.read_bytes() for p in trials.glob(f"*/{RESULT}")}
    interrupted = {p.parent.name: checkpoint_epoch(p.parent) for p in trials.glob("*/checkpoint.pt")
                   if p.parent.name not in finished}
    assert len(finished) >= 2

    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming the sweep" in proc.stdout
    summary = read_json(sweep_dir(results, "sweepy", cell.cell_id) / SUMMARY)
    assert summary["status"] == "done" and len(summary["trials"]) == 4
    assert all(t["state"] == "done" for t in summary["trials"])
    for trial_id, content in finished.items():  # finished trials were not trained again
        assert (trials / trial_id / RESULT).read_bytes() == content
    for trial_id, epoch in interrupted.items():  # an interrupted trial went on from its checkpoint
        assert read_record(trials / trial_id).resumed_from_epoch == (epoch or None)
    runs = mlflow_runs(results, "sweepy")
    children = [r for r in runs if "trial_id" in r.data.tags]
    assert sorted(r.data.tags["trial_id"] for r in children) == sorted(t["trial_id"] for t in summary["trials"])
    assert len([r for r in runs if r.data.tags.get(RUN_KIND) == "sweep"]) == 1


@pytest.mark.slow
def test_optuna_search_samples_the_declared_space(tmp_path):
    grid_path = write_grid(tmp_path, epochs=2)
    results = tmp_path / "results"
    proc = cli("sweep", grid_path, "--filter", "method=ar", "--samples", 3, "--search", "optuna",
               "--scheduler", "fifo", "--results", results, "--no-tracking")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = read_json(sweep_dir(results, "sweepy", ar_cell(grid_path).cell_id) / SUMMARY)
    assert summary["options"]["search"] == "optuna" and len(summary["trials"]) == 3
    assert all(t["config"]["lr"] in (1e-6, 0.1) and 1e-6 <= t["config"]["lam"] <= 1e-2 for t in summary["trials"])
    assert summary["tuned"]["status"] == "done"


@pytest.mark.slow
def test_a_ray_address_nobody_listens_on_is_one_line_and_nothing_runs(tmp_path):
    import socket

    with socket.socket() as s:  # a free port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = tmp_path / "results"
    proc = cli("sweep", write_grid(tmp_path), "--filter", "method=ar", "--samples", 2, "--results", results,
               "--address", f"127.0.0.1:{port}", timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and f"no Ray cluster at --address 127.0.0.1:{port}" in err[0] and "ray start" in err[0]
    assert not (results / "sweepy").exists()  # not even the pretrain cell ran


@pytest.mark.slow
def test_ray_inside_one_slurm_allocation_runs_the_sweep(slurm_cluster, tmp_path):
    grid_path = write_grid(tmp_path, epochs=2)
    results = tmp_path / "results"
    proc = cli("sweep", grid_path, "--filter", "method=ar", "--samples", 3, "--launcher", "slurm",
               "--profile", "local", "--results", results, "--wait")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    log = Path(proc.stdout.split("log: ")[1].split()[0])
    text = log.read_text()
    assert "reprogbench: Ray head on" in text and "1 node(s)" in text
    # Ray was stopped by its own SIGTERM before the job ended, not killed with the step by srun
    assert "reprogbench: Ray stopped on 1 node(s)" in text, text[-3000:]
    assert "Killed" not in text and "forcing job termination" not in text, text[-3000:]
    assert "sweep 1/1" in text and text.count("  trial ") == 3
    summary = read_json(sweep_dir(results, "sweepy", ar_cell(grid_path).cell_id) / SUMMARY)
    assert summary["status"] == "done" and summary["tuned"]["test_acc"] is not None
    row = next(line for line in proc.stdout.splitlines() if line.startswith(ar_cell(grid_path).cell_id))
    assert f"{summary['tuned']['test_acc']:.2f}" in row
    assert json.loads(json.dumps(summary["space"])) == {"lr": {"choice": [1e-6, 0.1]},
                                                        "lam": {"loguniform": [1e-6, 1e-2]}}


@pytest.mark.slow
def test_the_ray_sweep_batch_script_runs_the_sweep_and_stops_ray_before_its_job_ends(slurm_cluster, tmp_path):
    # slurm/ray-sweep.sbatch is what a user submits by hand: the same cluster script, under `set -u`
    grid_path = write_grid(tmp_path, epochs=2)
    results = tmp_path / "results"
    env = {**os.environ, "REPROGBENCH_PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    submit = subprocess.run(
        ["sbatch", "--parsable", "--wait", "--nodes=1", "--cpus-per-task=2", "--mem=2G", "--time=10",
         f"--output={tmp_path}/sweep-%j.out", str(REPO / "slurm" / "ray-sweep.sbatch"), str(grid_path),
         "--filter", "method=ar", "--samples", "2", "--scheduler", "fifo", "--results", str(results)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    (log,) = tmp_path.glob("sweep-*.out")
    text = log.read_text()
    assert submit.returncode == 0, submit.stderr + text[-3000:]
    assert "sweep 1/1" in text and text.count("  trial ") == 2, text[-3000:]
    assert "reprogbench: Ray stopped on 1 node(s)" in text and "Killed" not in text, text[-3000:]
    summary = read_json(sweep_dir(results, "sweepy", ar_cell(grid_path).cell_id) / SUMMARY)
    assert summary["status"] == "done"


@pytest.mark.slow
def test_a_sweep_into_a_relative_results_folder_finds_its_original(tmp_path):
    # Ray starts each trial in a folder of its own: `--results results` (the default) must still name the folder
    # the pretrain cell was written to, not one under the trial's
    write_grid(tmp_path, epochs=1)
    proc = cli("sweep", "sweepy.yaml", "--filter", "method=ar", "--samples", 1, "--scheduler", "fifo",
               "--results", "results", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = read_json(sweep_dir(tmp_path / "results", "sweepy", ar_cell(tmp_path / "sweepy.yaml").cell_id) / SUMMARY)
    assert summary["status"] == "done" and summary["trials"][0]["state"] == "done"
