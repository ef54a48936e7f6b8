"""`reprogbench sweep GRID --launcher slurm`: one allocation that runs a Ray cluster and the sweep on it.

The job is a submitit job whose callable, `SweepJob`, holds the sweep as data (the grid, its chosen cells, the run
settings and the `SweepOptions`): nothing is turned back into command-line flags. Before the callable starts, the
job's batch script sources `slurm/ray-cluster.sh` (the same script `slurm/ray-sweep.sbatch` uses), which starts
a Ray head on the first node and a worker on each other; the callable then runs the sweep with `--address auto`
in the batch script itself, on the head node. The sweep is the same code as on a laptop: it resumes from the
results folder, so resubmitting the same command after a time-out goes on where the last job stopped.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.grid import Cell, Grid
from launch.local import RunSettings
from launch.slurm import queue_states, require_slurm
from launch.slurm_profile import SlurmProfile
from launch.sweep_records import SweepOptions
from slurm import shipped

CLUSTER_SCRIPT = shipped("ray-cluster.sh")


@dataclass(frozen=True)
class SweepJob:
    """What the allocation runs once its Ray cluster is up: `sweep_cells` on the job's cells, by value."""

    grid: Grid
    cells: list[Cell]
    settings: RunSettings
    options: SweepOptions

    def __call__(self) -> list[str]:
        from launch.sweep import sweep_cells

        options = dataclasses.replace(self.options, address="auto")  # the cluster ray-cluster.sh started
        results = sweep_cells(self.grid, self.cells, self.settings, options)
        return [str(r.summary.get("status")) for r in results]


def job_resources(profile: SlurmProfile) -> dict:
    """The profile as submitit parameters for one Ray job: one task per node holding all of the node's share."""
    res = profile.for_method("sweep")  # a profile may give `methods: {sweep: {...}}` for sweeps
    params = {"nodes": res["nodes"], "timeout_min": res["time"], "tasks_per_node": 1}
    cpus = res["cpus_per_task"]
    if res["gpus_per_node"]:
        params["gpus_per_node"] = res["gpus_per_node"]
        if profile.cpus_per_task is None and profile.cpus_per_gpu:
            cpus = profile.cpus_per_gpu * res["gpus_per_node"]  # Ray's one task per node takes every GPU's CPUs
    if cpus:
        params["cpus_per_task"] = cpus
    if res["mem_gb"]:
        params["mem_gb"] = res["mem_gb"]
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(profile, key):
            params[f"slurm_{key}"] = getattr(profile, key)
    return params


def submit_sweep(job: SweepJob, profile: SlurmProfile, log_dir: Path) -> tuple[str, Path]:
    """Queue the Ray sweep job; -> (job id, its log file)."""
    import submitit

    require_slurm()
    queue_states()  # a controller that does not answer is an error before anything is queued
    executor = submitit.AutoExecutor(folder=log_dir / "%j", cluster="slurm")
    setup = [*profile.setup, "set -eo pipefail", f"export REPROGBENCH_PYTHON={sys.executable}",
             f"source {CLUSTER_SCRIPT}"]
    # no srun: the driver runs in the batch script on the head node, beside the Ray head it talks to
    executor.update_parameters(name="reprogbench-sweep", slurm_setup=setup, slurm_use_srun=False,
                               slurm_signal_delay_s=profile.signal_delay_s,
                               slurm_additional_parameters=dict(profile.sbatch), **job_resources(profile))
    submitted = executor.submit(job)
    return submitted.job_id, Path(str(submitted.paths.stdout))


def wait_for_job(job_id: str, poll_s: float = 5.0) -> None:
    """Block until the job has left the queue (done, failed or cancelled: the sweep's files say which)."""
    while job_id in {j.split("_")[0] for j in queue_states()}:
        time.sleep(poll_s)
