"""What a process was given decides its threads and its rank: Slurm's CPUs, Ray's, the affinity mask, and the
several tasks of one `srun` forming one torch.distributed group; and the address a server publishes to other nodes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from launch.allocation import allocated_cpus, export_srun_group

REPO = Path(__file__).resolve().parent.parent
NODE_ADDRESS = REPO / "slurm" / "node-address.sh"


@pytest.fixture
def clean_env(monkeypatch):
    # export_srun_group() sets variables of its own (RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, ...) that monkeypatch
    # never saw; the whole environment is put back afterwards, so none leaks into later tests (an in-process trainer
    # would wait for a process group, and sbatch would hand them to a job, where submitit refuses to export again)
    saved = dict(os.environ)
    for name in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                 "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SUBMITIT_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    monkeypatch.undo()
    os.environ.clear()
    os.environ.update(saved)


def test_threads_follow_the_allocation_not_the_machine(clean_env):
    mask = len(os.sched_getaffinity(0))
    assert allocated_cpus() == mask
    clean_env.setenv("SLURM_CPUS_PER_TASK", "1")
    assert allocated_cpus() == 1
    clean_env.setenv("SLURM_CPUS_PER_TASK", str(mask + 8))  # an allocation larger than the mask: the mask wins
    assert allocated_cpus() == mask
    clean_env.delenv("SLURM_CPUS_PER_TASK")
    clean_env.setenv("OMP_NUM_THREADS", "1")  # what Ray sets in a trial's worker
    assert allocated_cpus() == 1


def test_the_affinity_mask_alone_decides_under_taskset(clean_env):
    code = ("import os; os.sched_setaffinity(0, {0}); from launch.allocation import allocated_cpus; "
            "print(allocated_cpus())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True,
                         env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
    assert out.stdout.strip() == "1"


def test_two_srun_tasks_form_one_group_with_a_port_stable_for_the_job(clean_env):
    clean_env.setenv("SLURM_JOB_ID", "4242")
    clean_env.setenv("SLURM_JOB_NODELIST", "node[3-4]")
    clean_env.setenv("SLURM_NTASKS", "4")
    clean_env.setenv("SLURM_STEP_NUM_TASKS", "4")
    clean_env.setenv("SLURM_JOB_NUM_NODES", "2")
    clean_env.setenv("SLURM_NODEID", "1")
    clean_env.setenv("SLURM_PROCID", "3")
    clean_env.setenv("SLURM_LOCALID", "1")
    assert export_srun_group()
    first = {k: os.environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    assert first["RANK"] == "3" and first["WORLD_SIZE"] == "4" and first["LOCAL_RANK"] == "1"
    assert first["MASTER_ADDR"] == "node3" and 20000 <= int(first["MASTER_PORT"]) <= 60000
    # the other rank computes the same master and port from the same job
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE"):
        clean_env.delenv(name, raising=False)
    clean_env.setenv("SLURM_PROCID", "0")
    clean_env.setenv("SLURM_LOCALID", "0")
    clean_env.setenv("SLURM_NODEID", "0")
    assert export_srun_group()
    assert (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]) == (first["MASTER_ADDR"], first["MASTER_PORT"])


def test_one_task_torchrun_and_submitit_are_left_alone(clean_env):
    clean_env.setenv("SLURM_PROCID", "0")
    clean_env.setenv("SLURM_STEP_NUM_TASKS", "1")
    assert not export_srun_group() and "RANK" not in os.environ
    clean_env.setenv("SLURM_STEP_NUM_TASKS", "2")
    clean_env.setenv("RANK", "1")  # torchrun's or submitit's own
    assert not export_srun_group() and os.environ["RANK"] == "1"


def run_address(**env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(NODE_ADDRESS)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=30)


def test_the_node_address_is_never_loopback():
    got = run_address()
    assert got.returncode == 0, got.stderr
    address = got.stdout.strip()
    assert not address.startswith("127.") and address != "::1"
    assert address in subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()


@pytest.mark.parametrize("loopback", ["127.0.0.1", "127.0.1.1", "::1"])
def test_a_loopback_address_is_refused_in_one_line_naming_the_override(loopback):
    got = run_address(REPROGBENCH_NODE_ADDRESS=loopback)
    lines = got.stderr.strip().splitlines()
    assert got.returncode == 2 and len(lines) == 1 and "REPROGBENCH_NODE_ADDRESS" in lines[0] and loopback in lines[0]
    assert got.stdout == ""


def test_the_mlflow_server_script_publishes_a_reachable_address(tmp_path):
    """slurm/mlflow-server.sbatch run as its batch step would (bash; sbatch only adds the allocation): the URL it
    publishes is not loopback and the server answers there; with only a loopback address it refuses, publishing none."""
    script = REPO / "slurm" / "mlflow-server.sbatch"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "REPROGBENCH_PYTHON": sys.executable, "MLFLOW_BACKEND": f"sqlite:///{tmp_path}/mlflow.db",
           "MLFLOW_PORT": "15731", "MLFLOW_WORKERS": "1"}
    env.pop("MLFLOW_HOST", None)
    refused = subprocess.run(["bash", str(script), str(tmp_path / "loop")], capture_output=True, text=True,
                             env={**env, "REPROGBENCH_NODE_ADDRESS": "127.0.1.1"}, timeout=60)
    assert refused.returncode == 2 and "REPROGBENCH_NODE_ADDRESS" in refused.stderr
    assert not (tmp_path / "loop" / "mlflow-server.url").exists()

    server = subprocess.Popen(["bash", str(script), str(tmp_path)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        url_file = tmp_path / "mlflow-server.url"
        while not url_file.exists():
            assert time.monotonic() < deadline and server.poll() is None, server.stdout.read().decode()
            time.sleep(0.5)
        url = url_file.read_text().strip()
        assert not url.startswith(("http://127.", "http://localhost"))
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the server never answered"
                time.sleep(1)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
