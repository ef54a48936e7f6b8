"""`reprogbench run GRID --launcher slurm`: a grid's pending cells as Slurm job arrays, through submitit.

- One array task runs one pack of cells (`launch.local.plan_packs`: cells sharing a frozen backbone pass), so
  packing saves GPU time on a cluster too. Packs of one wave with the same resources form one job array, at
  most `array_parallelism` tasks running at once.
- Waves: pretrain cells go first; a later cell's array depends only on the array tasks of its own pretrain cells
  (`afterany:ARRAY_TASK`, one array per set of dependencies), so an unrelated slow cell never holds it back, and a
  cell whose original model is missing when it starts fails with that reason instead of waiting forever on a
  failed dependency.
- Finished cells are skipped before submission, and so are cells whose job is still queued or running, so a
  rerun submits exactly the holes.
- A job's tasks form one torch.distributed group (submitit's distributed environment, exported for Accelerate);
  only rank 0 writes records and MLflow runs (as under torchrun).
- Preemption and time limits: Slurm sends USR2 (`signal_delay_s` before the limit, or on preemption); submitit
  calls `PackJob.checkpoint`, which requeues the same job. Training checkpoints every epoch (model or program,
  optimizer, RNG, best-so-far, MLflow run id), so the requeued job resumes from the last finished epoch and ends
  with the metrics of an uninterrupted run; its MLflow run continues.

Nothing here waits on `sacct` (many clusters restrict it; the test cluster has none): `status` reads the cells'
own records, `slurm.json` beside each (job id, log paths, attempts) and `squeue` for what is queued or running.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from bench.cell_lock import live_state, read_holder
from bench.files import cell_dir, read_json, write_json
from bench.grid import Cell, Grid
from bench.record import cell_status, read_record
from launch.local import RunSettings, plan_packs, waves
from launch.slurm_profile import SlurmProfile

SLURM_RECORD = "slurm.json"  # per cell: job id, log paths, attempts
# srun stopped inheriting the job's --cpus-per-task in Slurm 22.05 (and took it back in 23.02): where cores are bound
# each task would be pinned to one. Setting it for the job's steps is harmless on every version.
SRUN_GETS_THE_CPUS = 'if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK; fi'


class SlurmUnavailable(RuntimeError):
    """No Slurm client on this machine (sbatch / squeue not found)."""


def require_slurm() -> None:
    missing = [c for c in ("sbatch", "squeue", "scontrol") if shutil.which(c) is None]
    if missing:
        raise SlurmUnavailable(f"{', '.join(missing)} not found: run on a Slurm login node, or start the local "
                               "test cluster with `slurm/local-cluster/start`")


# --------------------------------------------------------------------------- the job


class PackJob:
    """What one array task runs: a pack of cells, resumable (submitit requeues it on USR2 via `checkpoint`)."""

    def __init__(self, cells: list[Cell], settings: RunSettings):
        self.cells = cells
        self.settings = settings

    def __call__(self) -> list[tuple[str, str, str]]:
        import submitit

        from launch.local import execute_pack

        env = submitit.JobEnvironment()
        if env.num_tasks > 1:  # one task per GPU (or CPU rank): a torch.distributed group Accelerate picks up
            # sbatch copies the submitting shell's environment: a torchrun shell's RANK or LOCAL_WORLD_SIZE would
            # make submitit refuse to export this job's own ranks
            for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
                os.environ.pop(name, None)
            # every GPU of the node stays visible: Accelerate puts rank r on cuda:LOCAL_RANK
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        main = env.global_rank == 0
        if main:
            attempts = [note_attempt(cell_dir(self.settings.results_root, c.grid, c.cell_id), env.job_id)
                        for c in self.cells]
            print(f"reprogbench: job {env.job_id} on {env.hostname}: {len(self.cells)} cell(s), "
                  f"{env.num_tasks} task(s), attempt {max(attempts)}", flush=True)
        runnable = []
        outcomes = []
        for cell in self.cells:
            missing = [d for d in cell.depends_on
                       if cell_status(cell_dir(self.settings.results_root, cell.grid, d)) != "done"]
            if missing:  # its pretrain cell failed (afterany lets this job start anyway): fail with the reason
                outcomes.append(self._blocked(cell, missing[0]))
            else:
                runnable.append(cell)
        if runnable:
            outcomes += execute_pack(runnable, self.settings, log_epochs=main)
        for o in outcomes if main else ():
            print(f"reprogbench: {o.status} {o.cell.cell_id} {o.cell.name}" + (f": {o.message}" if o.message else ""),
                  flush=True)
        return [(o.cell.cell_id, o.status, o.message) for o in outcomes]

    def _blocked(self, cell: Cell, dependency: str):
        from launch.local import _failed

        return _failed(cell, RuntimeError(f"its original model is missing: dependency cell {dependency} did not "
                                          "finish (see its log in `reprogbench status`)"), self.settings)

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Called by submitit on USR2 (time limit or preemption): requeue this same job. Training state is
        already on disk (a checkpoint per epoch, written atomically), so nothing more is saved here."""
        import submitit

        print("reprogbench: Slurm signalled a time limit or preemption; requeueing, the cells resume from their "
              "last checkpoint", flush=True)
        return submitit.helpers.DelayedSubmission(self)


def note_attempt(directory: Path, job_id: str) -> int:
    """Record that a job started on this cell; returns how many times one has (2+: requeued)."""
    jobs = read_json(directory / SLURM_RECORD) or {}
    jobs.setdefault("starts", []).append({"job_id": job_id, "at": _now()})
    write_json(directory / SLURM_RECORD, jobs)  # creates the folder
    return len(jobs["starts"])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- submission


@dataclass
class Submitted:
    job_id: str
    cells: list[Cell]
    stdout: Path


@dataclass
class Submission:
    submitted: list[Submitted]
    already_done: int
    already_queued: dict[str, str]  # cell_id -> job id still queued or running


def _executor(folder: Path, resources: dict[str, Any], profile: SlurmProfile, dependency: Optional[str]):
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=profile.max_requeues)
    extra = {"open-mode": "append", "requeue": True, **profile.sbatch}  # append: a requeued job keeps its log
    params: dict[str, Any] = {
        "timeout_min": resources["time"], "nodes": resources["nodes"],
        "tasks_per_node": resources["tasks_per_node"], "slurm_array_parallelism": profile.array_parallelism,
        "slurm_signal_delay_s": profile.signal_delay_s, "slurm_setup": [*profile.setup, SRUN_GETS_THE_CPUS],
        "slurm_additional_parameters": extra, "name": "reprogbench",
    }
    for key in ("account", "qos", "constraint"):
        if getattr(profile, key):
            params[f"slurm_{key}"] = getattr(profile, key)
    if dependency:
        params["slurm_dependency"] = dependency
    if resources["gpus_per_node"]:
        params["gpus_per_node"] = resources["gpus_per_node"]
    if resources["cpus_per_task"]:
        params["cpus_per_task"] = resources["cpus_per_task"]
    if resources["mem_gb"]:
        params["mem_gb"] = resources["mem_gb"]
    if profile.partition:
        params["slurm_partition"] = profile.partition
    executor.update_parameters(**params)
    return executor


def _note_submitted(job, pack: list[Cell], results_root: Path, grid_name: str) -> None:
    """Each cell's slurm.json: which job trains it and where its log is (status reads it, without sacct)."""
    for cell in pack:
        directory = cell_dir(results_root, grid_name, cell.cell_id)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / SLURM_RECORD, {"job_id": job.job_id, "stdout": str(job.paths.stdout),
                                              "stderr": str(job.paths.stderr), "submitted_at": _now(), "starts": []})


def submit_grid(grid: Grid, cells: list[Cell], settings: RunSettings, profile: SlurmProfile,
                log=print) -> Submission:
    """Queue every cell of `cells` that is neither done nor already queued; returns what was submitted."""
    require_slurm()
    settings = dataclasses.replace(settings, results_root=Path(settings.results_root).resolve(),
                                   data_root=Path(settings.data_root).resolve() if settings.data_root else None)
    queued = queue_states()
    done, in_queue, pending = 0, {}, []
    for cell in cells:
        directory = cell_dir(settings.results_root, grid.name, cell.cell_id)
        job = (read_json(directory / SLURM_RECORD) or {}).get("job_id")
        if cell_status(directory) == "done":
            done += 1
        elif job and job in queued:
            in_queue[cell.cell_id] = job
        else:
            pending.append(cell)
    submitted: list[Submitted] = []
    folder = settings.results_root / grid.name / "slurm" / "%j"
    job_of = dict(in_queue)  # cell_id -> the array task (ARRAY_TASK) that trains it
    for wave in waves(pending):
        # one array per (resources, dependencies): a cell waits only for the array tasks of its own pretrain cells,
        # so a slow unrelated baseline never holds it back. afterany, not afterok: a cell whose dependency failed
        # still starts, and fails at once naming it (PackJob._blocked), instead of pending forever
        groups: dict[tuple, list[list[Cell]]] = {}
        for pack in plan_packs(wave, settings):
            resources = tuple(sorted(profile.for_method(pack[0].method).items()))
            needs = tuple(sorted({job_of[d] for c in pack for d in c.depends_on if d in job_of}))
            groups.setdefault((resources, needs), []).append(pack)
        for (resources, needs), packs in groups.items():
            dependency = ",".join(f"afterany:{job}" for job in needs) or None
            executor = _executor(folder, dict(resources), profile, dependency)
            with executor.batch():
                jobs = [executor.submit(PackJob(pack, settings)) for pack in packs]
            for job, pack in zip(jobs, packs, strict=True):
                _note_submitted(job, pack, settings.results_root, grid.name)
                job_of.update((cell.cell_id, job.job_id) for cell in pack)
                submitted.append(Submitted(job.job_id, pack, Path(str(job.paths.stdout))))
            methods = ", ".join(sorted({c.method for p in packs for c in p}))
            log(f"submitted array {jobs[0].job_id.split('_')[0]}: {len(packs)} task(s), {sum(map(len, packs))} "
                f"cell(s) ({methods}; {dict(resources)['tasks_per_node']} task(s) x {dict(resources)['nodes']} "
                f"node(s) each)" + (f", after {len(needs)} pretrain task(s)" if needs else ""))
    return Submission(submitted, done, in_queue)


# --------------------------------------------------------------------------- status


def queue_states() -> dict[str, str]:
    """job id (array tasks as ARRAY_TASK) -> Slurm state, for this user's jobs still in the queue."""
    if shutil.which("squeue") is None:
        return {}
    user = os.environ.get("USER") or _whoami()
    out = subprocess.run(["squeue", "-h", "-r", "-u", user, "-o", "%i %T"], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        raise SlurmUnavailable(f"squeue failed: {out.stderr.strip() or out.returncode}")
    return dict(line.split(None, 1) for line in out.stdout.splitlines() if line.strip())


def _whoami() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


@dataclass
class CellState:
    cell: Cell
    state: str  # done | failed | pending | running | requeued | not submitted | lost | interrupted;
    #             a cell trained by `run`: `running (epoch k/n)`
    job_id: str = ""
    log: str = ""
    message: str = ""

    @property
    def kind(self) -> str:
        """The state without its detail: `running (epoch 3/12)` is `running`."""
        return self.state.split(" (")[0]


def cell_states(grid: Grid, cells: list[Cell], results_root: Path) -> list[CellState]:
    # asked only when some cell was submitted: a grid run here needs no Slurm controller to show its status
    queue: Optional[dict[str, str]] = None
    states = []
    for cell in cells:
        directory = cell_dir(results_root, grid.name, cell.cell_id)
        slurm = read_json(directory / SLURM_RECORD) or {}
        job, log = slurm.get("job_id", ""), slurm.get("stdout", "")
        record = read_record(directory)
        live = None if record and record.done else live_state(directory)  # trained by `run` (bench.cell_lock)
        if live is not None and not (job and live == "interrupted"):  # a job submitted since: the queue says more
            holder = read_holder(directory)
            states.append(CellState(cell, live, job, log, holder.where if holder else ""))
            continue
        if record is not None:
            states.append(CellState(cell, record.status, job, log, record.error or ""))
            continue
        if not job:
            states.append(CellState(cell, "not submitted"))
            continue
        queue = queue_states() if queue is None else queue
        slurm_state, starts = queue.get(job), len(slurm.get("starts", []))
        if slurm_state is None:
            states.append(CellState(cell, "lost", job, log, "its job left the queue without a result: see the log"))
        elif slurm_state == "RUNNING" or slurm_state == "COMPLETING":
            states.append(CellState(cell, "requeued" if starts > 1 else "running", job, log, f"attempt {starts}"))
        else:  # PENDING, REQUEUED, CONFIGURING, SUSPENDED ...: queued again after a start means requeued
            states.append(CellState(cell, "requeued" if starts else "pending", job, log, slurm_state.lower()))
    return states


def status_table(states: list[CellState]) -> str:
    from tabulate import tabulate

    rows = [[s.cell.cell_id, s.state, s.cell.name, s.job_id or "-", s.log or "-", s.message] for s in states]
    counts = Counter(s.kind for s in states)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return tabulate(rows, headers=["cell_id", "state", "cell", "job", "log", ""]) + f"\n{len(states)} cells: {summary}"


ACTIVE = ("pending", "running", "requeued")


def finishing_jobs(states: list[CellState]) -> set[str]:
    """The jobs of these cells still in the queue. A job writes its cell's record before the cell's last MLflow
    calls (its artifacts, the run FINISHED, the record marked synced) and before the job exits: until it has left
    the queue, MLflow, `sync` and a rerun would see the cell half-ended."""
    jobs = {s.job_id for s in states if s.job_id}
    return jobs & queue_states().keys() if jobs else set()


def wait(grid: Grid, cells: list[Cell], results_root: Path, poll_s: float = 5.0,
         timeout_s: Optional[float] = None) -> list[CellState]:
    """Block until no cell is pending, running or requeued and their jobs have left the queue, with a progress
    bar of finished cells."""
    from tqdm import tqdm

    start = time.monotonic()
    states = cell_states(grid, cells, results_root)
    with tqdm(total=len(cells), desc=grid.name, unit="cell", dynamic_ncols=True, file=sys.stderr,
              mininterval=poll_s if sys.stderr.isatty() else 60) as bar:
        while True:
            finished = sum(s.kind in ("done", "failed") for s in states)
            bar.update(finished - bar.n)
            running = sum(s.kind in ("running", "requeued") for s in states)
            active = any(s.kind in ACTIVE for s in states)
            finishing = set() if active else finishing_jobs(states)
            postfix = f"{len(finishing)} job(s) finishing" if finishing else f"{running} running"
            if bar.postfix != postfix:  # redraw on change only: logs of non-tty runs stay short
                bar.set_postfix_str(postfix)
            if not active and not finishing:
                return states
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                raise TimeoutError(f"cells or their jobs still queued or running after {timeout_s:.0f}s")
            time.sleep(poll_s)
            states = cell_states(grid, cells, results_root)
