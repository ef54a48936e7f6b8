"""What this process was given by its scheduler: CPUs, and under `srun` with several tasks, its rank in one group.

Slurm's allocation (`SLURM_CPUS_PER_TASK`), Ray's (which sets `OMP_NUM_THREADS` to a trial's CPUs) or the
affinity mask decide torch's threads, never the node's core count: a 1-CPU job on a shared node that runs 2 threads
was measured 3.9x slower than with 1.
"""
from __future__ import annotations

import os


def allocated_cpus() -> int:
    """The CPUs this process may use: the fewest of Slurm's allocation, Ray's, and the affinity mask."""
    counts = [len(os.sched_getaffinity(0))] if hasattr(os, "sched_getaffinity") else [os.cpu_count() or 1]
    # Ray sets OMP_NUM_THREADS only in its workers; a user's own setting is a request too, honoured the same way
    for variable in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            counts.append(int(value))
    return min(counts)


def export_srun_group() -> bool:
    """Under `srun` with several tasks (plain sbatch, `slurm/templates/cells.sbatch`), form one torch.distributed
    group for the cell, exactly as the submitit path does: ranks from Slurm, the first node as master and a port
    stable for the job. Returns whether it did; torchrun's and submitit's own variables are left alone."""
    tasks = os.environ.get("SLURM_STEP_NUM_TASKS", "1")
    if "RANK" in os.environ or "SLURM_PROCID" not in os.environ or not tasks.isdigit() or int(tasks) < 2:
        return False
    import submitit

    os.environ.setdefault("SUBMITIT_EXECUTOR", "slurm")  # what submitit's JobEnvironment reads the job from
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return True
