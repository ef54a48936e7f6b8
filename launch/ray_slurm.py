"""`reprogbench sweep GRID --launcher slurm`: one allocation that runs a Ray cluster and the sweep on it.

The job is `slurm/ray-sweep.sbatch` (a Ray head on the first node, a worker on each other, then
`reprogbench sweep ... --address auto`), submitted with the resources of a Slurm profile (`launch.slurm_profile`).
The sweep itself is the same code as on a laptop: it resumes from the results folder, so resubmitting the same
command after a time-out goes on where the last job stopped.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from launch.slurm import SlurmUnavailable, queue_states, require_slurm
from launch.slurm_profile import SlurmProfile

TEMPLATE = Path(__file__).resolve().parent.parent / "slurm" / "ray-sweep.sbatch"


def sbatch_options(profile: SlurmProfile) -> list[str]:
    """The profile as sbatch flags for one Ray job: one task per node holding all of the node's share."""
    res = profile.for_method("sweep")  # a profile may give `methods: {sweep: {...}}` for sweeps
    options = [f"--nodes={res['nodes']}", f"--time={res['time']}", "--ntasks-per-node=1"]
    cpus = res["cpus_per_task"]
    if res["gpus_per_node"]:
        options.append(f"--gpus-per-node={res['gpus_per_node']}")
        if profile.cpus_per_task is None and profile.cpus_per_gpu:
            cpus = profile.cpus_per_gpu * res["gpus_per_node"]  # Ray's one task per node takes every GPU's CPUs
    if cpus:
        options.append(f"--cpus-per-task={cpus}")
    if res["mem_gb"]:
        options.append(f"--mem={int(res['mem_gb'] * 1024)}M")
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(profile, key):
            options.append(f"--{key}={getattr(profile, key)}")
    for key, value in profile.sbatch.items():
        options.append(f"--{key}" if value is True else f"--{key}={value}")
    return options


def submit_sweep(sweep_args: list[str], profile: SlurmProfile, log_dir: Path) -> tuple[str, Path]:
    """Queue the Ray sweep job; -> (job id, its log file)."""
    require_slurm()
    queue_states()  # a controller that does not answer is an error before anything is queued
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "ray-sweep-%j.out"
    env = {**os.environ, "REPROGBENCH_PYTHON": sys.executable, "REPROGBENCH_SETUP": "\n".join(profile.setup)}
    command = ["sbatch", "--parsable", f"--output={log}", *sbatch_options(profile), str(TEMPLATE), *sweep_args]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    if out.returncode != 0:
        raise SlurmUnavailable(f"sbatch refused the sweep job: {out.stderr.strip() or out.returncode}")
    job_id = out.stdout.strip().split(";")[0]
    return job_id, Path(str(log).replace("%j", job_id))


def wait_for_job(job_id: str, poll_s: float = 5.0) -> None:
    """Block until the job has left the queue (done, failed or cancelled: the sweep's files say which)."""
    while job_id in {j.split("_")[0] for j in queue_states()}:
        time.sleep(poll_s)
