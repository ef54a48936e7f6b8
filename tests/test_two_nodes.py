"""A real two-node Slurm (slurm/local-cluster/two-nodes: node1 and node2 in network namespaces, own slurmd and own
address each): a DDP cell across both nodes, a Ray sweep whose cluster spans both, and cells on node1 logging to an
MLflow server running as a job on node2."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cli_helper import cli
from mlflow_servers import rest_runs

from bench.files import cell_dir, read_json
from bench.grid import load_grid
from bench.record import read_record
from launch.slurm import SLURM_RECORD

TWO_NODES = Path(__file__).resolve().parent.parent / "slurm" / "local-cluster" / "two-nodes"
CONF = "/var/tmp/reprogbench-slurm2/etc/slurm.conf"
REPO = TWO_NODES.parent.parent.parent
NODE_ADDRESS = {"node1": "10.77.0.2", "node2": "10.77.0.3"}
pytestmark = pytest.mark.slow

DDP = """
name: two_node_ddp
originals: [{backbone: test_tinycnn, methods: [scratch]}]
tasks: [digits]
methods: [{name: scratch}]
hparams: {epochs: 2, batch_size: 64}
"""


@pytest.fixture(scope="module")
def two_nodes():
    started = subprocess.run([TWO_NODES, "start"], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = CONF  # sbatch/squeue of the launcher talk to the two-node controller
    yield
    os.environ.pop("SLURM_CONF") if old is None else os.environ.update(SLURM_CONF=old)
    subprocess.run([TWO_NODES, "stop"], capture_output=True, text=True, timeout=120)


def run_cell(tmp_path: Path, nodes: int, tasks_per_node: int):
    grid_path = tmp_path / "two_node_ddp.yaml"
    grid_path.write_text(DDP)
    profile = tmp_path / f"n{nodes}.yaml"
    profile.write_text(f"partition: two\ntime: 10\nnodes: {nodes}\ncpus_per_task: 1\nmem_gb: 1\n")
    results = tmp_path / f"results-{nodes}"
    run = cli("run", grid_path, "--launcher", "slurm", "--profile", profile, "--tasks-per-node", str(tasks_per_node),
              "--results", results, "--wait", "--no-tracking")
    assert run.returncode == 0, run.stdout + run.stderr
    (cell,) = load_grid(grid_path).cells
    folder = cell_dir(results, "two_node_ddp", cell.cell_id)
    return read_record(folder), Path(read_json(folder / SLURM_RECORD)["stdout"]).read_text()


def test_a_ddp_cell_spans_two_nodes_and_matches_two_tasks_on_one(two_nodes, tmp_path):
    across, log = run_cell(tmp_path, nodes=2, tasks_per_node=1)
    assert across.status == "done" and across.environment.world_size == 2
    assert "hostname=node1" in log and "node=0(2)" in log and "2 task(s)" in log, log  # rank 0 of 2 nodes
    one_node, _ = run_cell(tmp_path, nodes=1, tasks_per_node=2)
    assert one_node.environment.world_size == 2
    # each rank asked for 1 CPU and ran 1 torch thread, alone on its node or beside the other rank (Accelerate would
    # give a rank alone on a node all its cores)
    assert across.environment.torch_threads == one_node.environment.torch_threads == 1
    # 2 ranks on 2 nodes train the same cell as 2 ranks on 1 node: the same accuracies (the selection, the test read);
    # the losses are compared to 5e-3 relative: gloo's allreduce across a network and within one node may sum the
    # ranks' gradients in another order
    got, want = across.metrics.model_dump(), one_node.metrics.model_dump()
    for key in want:
        if key.endswith("loss"):
            assert got[key] == pytest.approx(want[key], rel=5e-3), key
        else:
            assert got[key] == want[key], key


SWEEP = """
name: two_node_sweep
originals: [{backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 2}}]
tasks: [digits_01]
methods:
  - name: ar
    hparams: {lr: 0.05}
    search: {lr: {choice: [1.0e-3, 0.1]}}
hparams: {batch_size: 64, epochs: 2}
"""


def test_a_ray_sweep_runs_its_trials_on_both_nodes(two_nodes, tmp_path):
    from launch.sweep_records import SUMMARY, TRIALS, sweep_dir

    grid_path = tmp_path / "two_node_sweep.yaml"
    grid_path.write_text(SWEEP)
    profile = tmp_path / "n2.yaml"
    profile.write_text("partition: two\ntime: 10\nnodes: 2\ncpus_per_task: 1\nmem_gb: 1\n")
    results = tmp_path / "results"
    # fifo: every trial runs to its end; one CPU per node, so the first two trials run at once, one on each node
    proc = cli("sweep", grid_path, "--filter", "method=ar", "--samples", 4, "--scheduler", "fifo",
               "--launcher", "slurm", "--profile", profile, "--results", results, "--wait")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    log = Path(proc.stdout.split("log: ")[1].split()[0]).read_text()
    assert f"Ray head on node1 ({NODE_ADDRESS['node1']}:" in log and "2 node(s)" in log, log[-3000:]
    assert "reprogbench: Ray stopped on 2 node(s)" in log and "Killed" not in log, log[-3000:]  # a drain, not a kill
    cell = next(c for c in load_grid(grid_path).cells if c.method == "ar")
    summary = read_json(sweep_dir(results, "two_node_sweep", cell.cell_id) / SUMMARY)
    assert summary["status"] == "done" and len(summary["trials"]) == 4
    hosts = [read_record(folder).environment.hostname
             for folder in sorted((sweep_dir(results, "two_node_sweep", cell.cell_id) / TRIALS).iterdir())]
    assert len(hosts) == 4 and set(hosts) == {"node1", "node2"}, hosts


def test_cells_on_node1_log_to_an_mlflow_server_running_on_node2(two_nodes, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    env = {**os.environ, "MLFLOW_BACKEND": f"sqlite:///{tmp_path / 'server.db'}", "MLFLOW_WORKERS": "1",
           "REPROGBENCH_PYTHON": sys.executable, "PYTHONPATH": str(REPO),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # the job's `mlflow` is the venv's
    submitted = subprocess.run(
        ["sbatch", "--parsable", "-w", "node2", "--cpus-per-task=1", "--mem=512M", f"--output={tmp_path}/server-%j.out",
         REPO / "slurm" / "mlflow-server.sbatch", results], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    try:
        url_file = results / "mlflow-server.url"
        url = wait_for_server(url_file, tmp_path, job)
        assert url == f"http://{NODE_ADDRESS['node2']}:5000"  # node2's own address, not loopback
        grid_path = tmp_path / "two_node_ddp.yaml"
        grid_path.write_text(DDP)
        profile = tmp_path / "node1.yaml"
        profile.write_text("partition: two\ntime: 10\nnodes: 1\ncpus_per_task: 1\nmem_gb: 1\n"
                           "sbatch: {nodelist: node1}\n")
        run = cli("run", grid_path, "--launcher", "slurm", "--profile", profile, "--results", results, "--wait",
                  "--tracking-uri", url)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        (cell,) = load_grid(grid_path).cells
        record = read_record(cell_dir(results, "two_node_ddp", cell.cell_id))
        assert record.status == "done" and record.environment.hostname == "node1"
        (cell_run,) = [r for r in rest_runs(url, "two_node_ddp")
                       if {t["key"]: t["value"] for t in r["data"].get("tags", [])}.get("cell_id") == cell.cell_id]
        assert cell_run["info"]["status"] == "FINISHED"
        metrics = {m["key"]: m["value"] for m in cell_run["data"]["metrics"]}
        assert metrics["final/test_acc"] == pytest.approx(record.metrics.test_acc)
    finally:
        subprocess.run(["scancel", job], capture_output=True)


def wait_for_server(url_file: Path, folder: Path, job: str, timeout_s: float = 180) -> str:
    """The URL the server job published, once the server answers there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if url_file.is_file():
            url = url_file.read_text().strip()
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if response.status == 200:
                        return url
            except OSError:
                pass
        time.sleep(1)
    logs = "".join(p.read_text() for p in folder.glob(f"server-{job}.out"))
    raise AssertionError(f"the MLflow server job {job} did not answer in {timeout_s:.0f} s:\n{logs[-3000:]}")
