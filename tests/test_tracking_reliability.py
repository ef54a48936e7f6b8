"""Tracking faults, injected for real: an MLflow server killed mid-grid and restarted (then `reprogbench sync`),
a server that is down from the start, many writers on one sqlite store and on an MLflow server backed by
PostgreSQL (a local pool and a Slurm array), secrets in the environment and in the tracking URI, and which
addresses the servers the suite starts listen on. Figures in RELIABILITY.md come from these tests."""
from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from cli_helper import cli, cli_popen
from mlflow_servers import HOST, MlflowServer, PostgresCluster, free_port, metric_history, tags_of

from bench.files import CHECKPOINT, RESULT, cell_dir
from bench.grid import load_grid
from bench.record import read_record
from bench.track import RUN_KIND, Tracker, TrackingUnavailable

REPO = Path(__file__).resolve().parent.parent
HISTORY = ("train_loss", "train_acc", "val_loss", "val_acc", "elapsed_s", "energy_j")






def write_grid(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\n{text}")
    return path


def scratch_grid(seeds: int, backbone: str = "test_tinycnn", task: str = "digits_01", epochs: int = 2) -> str:
    return (f"originals: [{{backbone: {backbone}, methods: [scratch]}}]\ntasks: [{task}]\n"
            f"methods: [{{name: scratch}}]\nhparams: {{batch_size: 64, epochs: {epochs}}}\n"
            f"seeds: {list(range(seeds))}\n")


def cell_runs(runs: list[dict]) -> list[dict]:
    """The runs that are cells (a launch's parent run and a report's are not)."""
    return [r for r in runs if "cell_id" in tags_of(r) and RUN_KIND not in tags_of(r)]


def assert_each_cell_once_and_complete(base: str, runs: list[dict], grid, results: Path) -> None:
    """Exactly one FINISHED run per cell, with every epoch's metrics and the final ones the record holds."""
    runs = cell_runs(runs)
    counts = Counter(tags_of(r)["cell_id"] for r in runs)
    assert counts == Counter(c.cell_id for c in grid.cells), counts  # none lost, none duplicated
    for run in runs:
        cell_id = tags_of(run)["cell_id"]
        record = read_record(cell_dir(results, grid.name, cell_id))
        assert run["info"]["status"] == "FINISHED", (cell_id, run["info"]["status"])
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        assert metrics["final/test_acc"] == pytest.approx(record.metrics.test_acc)
        assert metrics["final/best_val_acc"] == pytest.approx(record.metrics.val_acc)
        history = metric_history(base, run["info"]["run_id"], "epoch/val_acc")
        steps = sorted((m["step"], m["value"]) for m in history)
        assert [step for step, _ in steps] == [row.epoch for row in record.history]  # each epoch once
        assert [v for _, v in steps] == pytest.approx([row.val_acc for row in record.history])
        assert tags_of(run)["method"] == record.spec["method"]["name"]


def no_traceback(*procs: subprocess.CompletedProcess) -> None:
    for proc in procs:
        assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]


# --------------------------------------------------------------------------- outage and sync


@pytest.mark.slow
def test_a_server_killed_mid_grid_loses_nothing_and_sync_uploads_each_cell_once(tmp_path):
    server = MlflowServer(f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}", tmp_path / "server").start()
    try:
        # the listening sockets of the server and its workers: loopback only
        listening = {c.laddr.ip for p in [psutil.Process(server.proc.pid), *psutil.Process(server.proc.pid).children(
            recursive=True)] for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN}
        assert listening == {HOST}, listening

        grid_path = write_grid(tmp_path, "outage", scratch_grid(4, "smallcnn", "digits", epochs=3))
        grid = load_grid(grid_path)
        results = tmp_path / "results"
        run = cli_popen("run", grid_path, "--results", results, "--tracking-uri", server.url)
        dirs = [cell_dir(results, grid.name, c.cell_id) for c in grid.cells]
        deadline = time.monotonic() + 600
        # the fault: once a cell has finished and the next is between epochs, the server dies without a word
        while not (any((d / RESULT).is_file() for d in dirs)
                   and any((d / CHECKPOINT).is_file() and not (d / RESULT).is_file() for d in dirs)):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server.kill()
        finished_before = sum((d / RESULT).is_file() for d in dirs)
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-3000:]
        assert "Traceback" not in out + err and "database is locked" not in err
        assert err.count("tracking offline:") == 1, err  # said once, with the command that catches up
        assert f"run `reprogbench sync {grid.name}`" in err
        records = [read_record(d) for d in dirs]
        assert all(r.done and len(r.history) == 3 for r in records)  # local records complete
        unsynced = [r for r in records if not r.tracking.synced]
        assert len(unsynced) == len(records) - finished_before  # every cell from the kill on says so

        # down from the start: cells go on at once, said once
        late_path = write_grid(tmp_path, "outage_late", scratch_grid(2))
        late = cli("run", late_path, "--results", results, "--tracking-uri", server.url)
        assert late.returncode == 0 and late.stderr.count("tracking offline:") == 1, late.stderr[-3000:]
        failed_sync = cli("sync", grid_path, "--results", results, "--tracking-uri", server.url)
        assert failed_sync.returncode == 1
        assert failed_sync.stderr.strip().splitlines()[-1].startswith("reprogbench: error: MLflow at")

        server.start()  # the restart, on the same store and port
        partial = {tags_of(r)["cell_id"]: r for r in cell_runs(server.runs(grid.name))}
        incomplete = [c for c, r in partial.items() if r["info"]["status"] != "FINISHED"]
        missing = [c.cell_id for c in grid.cells if c.cell_id not in partial]
        first = cli("sync", grid_path, "--results", results, "--tracking-uri", server.url)
        late_sync = cli("sync", late_path, "--results", results, "--tracking-uri", server.url)
        no_traceback(first, late_sync)
        assert first.returncode == 0 and late_sync.returncode == 0, first.stderr[-3000:]
        assert f"{len(missing)} uploaded, {len(incomplete)} completed" in first.stdout, first.stdout
        assert "2 uploaded, 0 completed, 0 already complete" in late_sync.stdout
        before = {name: server.runs(name) for name in (grid.name, "outage_late")}
        assert_each_cell_once_and_complete(server.url, before[grid.name], grid, results)
        assert_each_cell_once_and_complete(server.url, before["outage_late"], load_grid(late_path), results)
        assert all(read_record(d).tracking.synced for d in dirs)

        again = cli("sync", grid_path, "--results", results, "--tracking-uri", server.url)
        assert again.returncode == 0 and "0 uploaded, 0 completed, 4 already complete" in again.stdout
        after = server.runs(grid.name)
        assert sorted(r["info"]["run_id"] for r in after) == sorted(r["info"]["run_id"] for r in before[grid.name])
        figures = {"cells": len(dirs) + 2, "finished_before_kill": finished_before, "incomplete_runs": len(incomplete),
                   "missing_runs": len(missing) + 2, "runs_after_sync": len(cell_runs(after)) + 2,
                   "duplicates": 0, "lost": 0}
        print("outage figures:", json.dumps(figures))
    finally:
        server.stop()


# --------------------------------------------------------------------------- many writers


@pytest.mark.slow
def test_concurrent_writers_on_a_fresh_sqlite_store_lose_no_run(tmp_path):
    """Four `reprogbench cell` processes (what an sbatch array of cells runs) open one fresh sqlite store at once:
    without the store's lock they race on creating its tables ("table ... already exists") and runs go missing."""
    grid_path = write_grid(tmp_path, "sqlite_writers", scratch_grid(4))
    grid = load_grid(grid_path)
    results = tmp_path / "results"
    procs = [cli_popen("cell", grid_path, c.cell_id, "--results", results) for c in grid.cells]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
        assert "tracking offline" not in err and "locked" not in err and "Traceback" not in err, err[-3000:]
    pool = cli("run", write_grid(tmp_path, "sqlite_pool", scratch_grid(8)), "--results", results,
               "--workers", "4", "--pack", "1")
    assert pool.returncode == 0 and "tracking offline" not in pool.stderr and "locked" not in pool.stderr, \
        pool.stderr[-3000:]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    for name, expected in (("sqlite_writers", grid), ("sqlite_pool", load_grid(tmp_path / "sqlite_pool.yaml"))):
        (experiment,) = [e for e in client.search_experiments() if e.name == name]
        runs = [r for r in client.search_runs([experiment.experiment_id]) if RUN_KIND not in r.data.tags]
        assert Counter(r.data.tags["cell_id"] for r in runs) == Counter(c.cell_id for c in expected.cells)
        assert all(r.info.status == "FINISHED" and "final/test_acc" in r.data.metrics for r in runs)


def probe_grid(n: int) -> str:
    """One tiny original and n - 1 linear probes of it: n cells, packed 8 to a backbone pass (an array task)."""
    return ("originals: [{backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 1}}]\ntasks: [digits_01]\n"
            f"methods: [{{name: linear_probe}}]\nhparams: {{batch_size: 64, epochs: 1}}\nseeds: {list(range(n - 1))}\n")


@pytest.fixture(scope="module")
def postgres_mlflow(tmp_path_factory):
    """An MLflow server backed by a throwaway PostgreSQL cluster on 127.0.0.1, each server worker's connection
    pool bounded so that the database is never exhausted."""
    root = tmp_path_factory.mktemp("postgres")
    cluster = PostgresCluster(max_connections=50).start()
    pool = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "4", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "4",
            "MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE": "300"}
    server = None
    try:
        server = MlflowServer(cluster.create_database("mlflow"), root / "server", workers=2, env=pool).start()
        yield {"server": server, "cluster": cluster, "root": root}
    finally:
        if server is not None:
            server.stop()
        cluster.stop()


@pytest.mark.slow
def test_64_cells_from_a_local_pool_and_a_slurm_array_into_postgres_backed_mlflow(postgres_mlflow, slurm_cluster,
                                                                                   tmp_path):
    server, cluster = postgres_mlflow["server"], postgres_mlflow["cluster"]
    results = tmp_path / "results"
    figures = {}
    peak, done = [0], threading.Event()

    def sample_connections():  # the database's client connections, twice a second, while the cells log
        while not done.is_set():
            peak[0] = max(peak[0], cluster.connections())
            done.wait(0.5)

    sampler = threading.Thread(target=sample_connections, daemon=True)
    sampler.start()
    try:  # a failure stops the sampler too: it must not query the cluster the fixture stops
        for name, launcher in (("pg_pool", ["--workers", "4", "--pack", "1"]),
                               ("pg_slurm", ["--launcher", "slurm", "--profile", "local", "--wait"])):
            grid_path = write_grid(tmp_path, name, probe_grid(64))
            grid = load_grid(grid_path)
            assert len(grid.cells) == 64
            start = time.perf_counter()
            proc = cli("run", grid_path, "--results", results, "--tracking-uri", server.url, *launcher)
            figures[name] = {"wall_s": round(time.perf_counter() - start, 1)}
            no_traceback(proc)
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert "tracking offline" not in proc.stderr, proc.stderr[-3000:]
            runs = server.runs(grid.name)
            assert_each_cell_once_and_complete(server.url, runs, grid, results)
            assert len([e for e in _experiments(server.url) if e["name"] == name]) == 1  # created once, before fan-out
            assert all(read_record(cell_dir(results, name, c.cell_id)).tracking.synced for c in grid.cells)
            figures[name].update(expected=64, found=len(cell_runs(runs)), lost=0, duplicated=0)
    finally:
        done.set()
        sampler.join()
    # two server workers, each a pool of at most 4 + 4 connections (+ the sampler's own psql)
    assert 0 < peak[0] <= 2 * 8 + 1, peak
    figures["peak_db_connections"] = peak[0]
    print("postgres figures:", json.dumps(figures))


def _experiments(base: str) -> list[dict]:
    from mlflow_servers import get_json

    return get_json(f"{base}/api/2.0/mlflow/experiments/search", {"max_results": 1000}).get("experiments", [])


# --------------------------------------------------------------------------- exposure


SENTINELS = {"MLFLOW_TRACKING_PASSWORD": "sentinel-pw-9f3a", "MLFLOW_TRACKING_TOKEN": "sentinel-token-51c2",
             "AWS_SECRET_ACCESS_KEY": "sentinel-aws-77d0", "WANDB_API_TOKEN": "sentinel-api-0b1e"}
URI_PASSWORD = "sentinel-uri-4e6d"


@pytest.mark.slow
def test_no_secret_reaches_records_params_tags_or_printed_lines(tmp_path):
    server = MlflowServer(f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}", tmp_path / "server").start()
    try:
        grid_path = write_grid(tmp_path, "secrets", (
            "originals: [{backbone: test_tinycnn, methods: [scratch]}]\ntasks: [digits]\nhparams: {epochs: 2}\n"
            'methods: [{name: scratch, hparams: {"optimizer, lr": [[adam, 0.001], [sgd, 1.0e+12]]}}]\n'))
        results = tmp_path / "results"
        uri = f"http://alice:{URI_PASSWORD}@127.0.0.1:{server.port}"
        proc = cli("run", grid_path, "--results", results, "--tracking-uri", uri, env=SENTINELS)
        assert proc.returncode == 1, proc.stderr[-3000:]  # the sgd cell diverges: a failed record and error.txt
        no_traceback(proc)
        grid = load_grid(grid_path)
        assert {read_record(cell_dir(results, grid.name, c.cell_id)).status for c in grid.cells} == {"done",
                                                                                                        "failed"}
        assert any(p.name == "error.txt" for p in results.rglob("*"))
        secrets = [*SENTINELS.values(), URI_PASSWORD]
        for path in (p for p in results.rglob("*") if p.is_file()):
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path
        printed = proc.stdout + proc.stderr
        assert not any(s in printed for s in secrets)
        runs = server.runs(grid.name)
        assert len(cell_runs(runs)) == 2
        shown = json.dumps(runs)  # every param, tag and metric of every run, as the server returns them
        assert not any(s in shown for s in secrets)
        sync = cli("sync", grid_path, "--results", results, "--tracking-uri", uri, env=SENTINELS)
        assert sync.returncode == 0 and not any(s in sync.stdout + sync.stderr for s in secrets)
    finally:
        server.stop()


@pytest.mark.slow
def test_reprogbench_ui_listens_on_loopback_only(tmp_path):
    grid_path = write_grid(tmp_path, "exposed", scratch_grid(1))
    results = tmp_path / "results"
    Tracker(f"sqlite:///{results / 'mlflow.db'}", "exposed").ensure_experiment()  # a store to show
    port = free_port()
    proc = cli_popen("ui", grid_path, "--results", results, "--port", port, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"MLflow UI: http://127.0.0.1:{port}/"), line
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        listening = {(c.laddr.ip, c.laddr.port) for p in tree for c in p.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN}
        assert listening == {("127.0.0.1", port)}, listening
    finally:
        from mlflow_servers import stop

        stop(proc)


# --------------------------------------------------------------------------- without a server


def test_credentials_leave_the_uri_for_the_variables_the_clients_read():
    from bench.redact import move_credentials_to_env, redact_text

    env: dict = {}
    assert move_credentials_to_env("http://alice:s3cret@mlflow.example:5000/path", env) == \
        "http://mlflow.example:5000/path"
    assert env == {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "s3cret"}
    env = {"PGPASSWORD": "already-set"}
    assert move_credentials_to_env("postgresql+psycopg2://bob:pw@db:5432/mlflow", env) == \
        "postgresql+psycopg2://bob@db:5432/mlflow"
    assert env == {"PGPASSWORD": "already-set"}  # the user's own setting wins
    assert move_credentials_to_env("sqlite:////tmp/mlflow.db", env) == "sqlite:////tmp/mlflow.db"
    assert redact_text("failed: mysql://carol:hunter2@db/x and https://dan@host") == \
        "failed: mysql://carol:***@db/x and https://dan@host"


def test_an_unreachable_server_is_said_once_and_then_never_called_again(capsys):
    uri = f"http://127.0.0.1:{free_port()}"  # nobody listens
    first, second = Tracker(uri, "unreachable"), Tracker(uri, "unreachable")
    assert first.ensure_experiment() is None and first.offline
    calls = []
    second.client = type("Counting", (), {"__getattr__": lambda self, name: lambda *a, **k: calls.append(name)})()
    assert second.start_parent("launch", {}) is None and second.ensure_experiment() is None
    assert calls == []  # offline for the rest of this process: no more waiting on retries
    state = second.sync_state(None)
    assert state.synced is False and "create experiment" in state.error
    err = capsys.readouterr().err
    assert err.count("tracking offline:") == 1 and "reprogbench sync unreachable" in err
    with pytest.raises(TrackingUnavailable):
        Tracker(uri, "unreachable", strict=True).ensure_experiment()
