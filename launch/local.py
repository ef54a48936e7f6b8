"""Run a grid's pending cells on this machine: in-process, or a pool of worker processes.

Dependencies run first (pretrain cells are a wave of their own); finished cells are skipped; a failing cell is
recorded as failed with its error and the others go on. Cells that can share a frozen backbone pass are packed
(`bench.pack`, up to `RunSettings.pack` per pass); a cell that diverges inside a pack fails alone and
the rest of its pack goes on from their checkpoints. SIGINT / SIGTERM stop the launch cleanly (`launch.interrupts`):
running cells end their epoch and stop as `interrupted`, resumable; a worker that dies loses its cells' epoch in
progress (`lost`), and a rerun resumes them.
"""
from __future__ import annotations

import dataclasses
import os
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from tqdm import tqdm

from bench import stop
from bench.files import ERROR, cell_dir, remove_leftover_temporaries, write_text, write_under
from bench.grid import Cell, Grid
from bench.record import CellRecord, cell_status, failed_record, write_record
from bench.track import PARENT_RUN
from launch.allocation import allocated_cpus
from launch.interrupts import StopOnSignals


@dataclass
class Outcome:
    cell: Cell
    status: str  # done | failed | blocked | interrupted (stopped on a signal: resumable) | lost (its worker died)
    #            | skipped (another launch trains it, or finished it: `launch.cell_claims`)
    message: str = ""
    record: Optional[CellRecord] = None
    tracking_offline: Optional[str] = None  # why MLflow failed in the process that ran it (None: it did not)


@dataclass
class RunSummary:
    outcomes: list[Outcome] = field(default_factory=list)
    already_done: int = 0
    experiment_id: Optional[str] = None  # the grid's MLflow experiment, when cells were tracked
    parent_run_id: Optional[str] = None  # this launch's MLflow run; the cells' runs are nested under it
    interrupted: Optional[int] = None  # the signal that stopped this launch (`launch.interrupts`)
    pending: int = 0  # cells that did not finish in this launch and are not failed: the rerun continues them

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in ("failed", "blocked")]

    @property
    def lost(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "lost"]


@dataclass(frozen=True)
class RunSettings:
    results_root: Path
    data_root: Optional[Path]
    tracking_uri: Optional[str]  # None: no MLflow
    threads: int = 0  # torch threads per worker; 0: the CPUs allocated to this process (launch.allocation)
    pack: int = 8  # most cells sharing one backbone pass; 1 runs every cell alone
    cache_features: bool = True  # head-only methods train on features computed once
    compile: bool = False  # torch.compile the backbone (compile time is recorded apart)
    data_path: str = "auto"  # images on the device whole, or streamed (bench.train.placement)
    parent_run_id: Optional[str] = None  # the launch's MLflow run (`start_launch_run`); cells' runs nest under it
    run_tags: tuple[tuple[str, str], ...] = ()  # added to each cell's MLflow run (e.g. a sweep's tuned re-run)

    def absolute(self) -> RunSettings:
        """These settings with the folders made absolute: for work that runs elsewhere (a Slurm job, a Ray trial,
        which Ray starts in a folder of its own), where a relative `results` would name another folder."""
        return dataclasses.replace(self, results_root=Path(self.results_root).resolve(),
                                   data_root=Path(self.data_root).resolve() if self.data_root else None)


def distributed_rank() -> int:
    """This process's rank under torchrun (0 otherwise): only rank 0 prints and writes."""
    return int(os.environ.get("RANK", "0"))


def execute_claimed(cells: list[Cell], settings: RunSettings, log_epochs: bool = False) -> list[Outcome]:
    """`execute_pack` for the cells of `cells` whose lock this process takes; the others are `skipped`, each with
    the line saying who trains it. The locks (and the live markers `ls` reads) are held while they train."""
    from launch.cell_claims import claim, release

    write_under(settings.results_root)  # in a worker or a Slurm job too: links planted in it are never followed
    locks, skipped = claim(cells, [cell_dir(settings.results_root, c.grid, c.cell_id) for c in cells])
    try:
        mine = [c for c in cells if c.cell_id in locks]
        for cell in mine:  # its lock is ours: a temporary file in its folder is a killed writer's
            remove_leftover_temporaries(cell_dir(settings.results_root, cell.grid, cell.cell_id))
        return [Outcome(c, "skipped", message=why) for c, why in skipped] + (
            execute_pack(mine, settings, log_epochs, locks) if mine else [])
    finally:
        release(locks)


def execute_pack(cells: list[Cell], settings: RunSettings, log_epochs: bool = False,
                 locks: Optional[dict] = None) -> list[Outcome]:
    """Run cells packed into one backbone pass (or one cell) and record each outcome; never raises for them.
    `locks` (cell_id -> `bench.cell_lock.CellLock`): the cells' locks this process holds, whose markers it keeps."""
    import torch

    from bench.stop import Interrupted
    from bench.track import Tracker
    from bench.train import ConsoleLog, Diverged, MLflowObserver, TrainContext, TrainOptions, run_pack

    write_under(settings.results_root)

    # the CPUs this task was given (Slurm, Ray, affinity), not the node's: recorded as torch_threads
    torch.set_num_threads(settings.threads or allocated_cpus())
    directories = [cell_dir(settings.results_root, c.grid, c.cell_id) for c in cells]
    deps = {dep: cell_dir(settings.results_root, c.grid, dep) for c in cells for dep in c.depends_on}
    tags = {**dict(settings.run_tags), **({PARENT_RUN: settings.parent_run_id} if settings.parent_run_id else {})}
    observers = [MLflowObserver(Tracker(settings.tracking_uri, cells[0].grid), tags)] if settings.tracking_uri else []
    observers += [ConsoleLog(lambda line: tqdm.write(line))] if log_epochs else []
    if locks:
        from bench.train.live import LiveMarker

        observers.append(LiveMarker(locks))
    try:
        records = run_pack(cells, directories, TrainContext(settings.data_root, deps,
                                                            TrainOptions(settings.cache_features, settings.compile,
                                                                         data_path=settings.data_path)),
                           observers)
        return [Outcome(c, "done", record=r) for c, r in zip(cells, records, strict=True)]
    except Interrupted as exc:  # not a failure: each cell has its checkpoint and the rerun resumes it
        return [Outcome(c, "interrupted", message=str(exc)) for c in cells]
    except Diverged as exc:
        if len(cells) == 1:
            return [_failed(cells[0], exc, settings)]
        # only the diverged cell fails; its pack-mates go on from the checkpoints of their last epoch
        bad = next(c for c in cells if c.cell_id == exc.cell_id)
        rest = [c for c in cells if c is not bad]
        return [_failed(bad, exc, settings), *execute_pack(rest, settings, log_epochs, locks)]
    except Exception as exc:  # noqa: BLE001 - one cell's failure must not stop the grid
        return [_failed(c, exc, settings) for c in cells]


def execute_pack_in_worker(cells: list[Cell], settings: RunSettings) -> list[Outcome]:
    """`execute_pack` in a pool worker: each outcome says whether MLflow went offline there, so the launching
    process can say it once for all workers."""
    from bench.track import Tracker

    outcomes = execute_claimed(cells, settings)
    for outcome in outcomes:
        outcome.tracking_offline = Tracker.offline_reason(settings.tracking_uri)
    return outcomes


def execute_cell(cell: Cell, settings: RunSettings, log_epochs: bool = False) -> Outcome:
    return execute_pack([cell], settings, log_epochs)[0]


def _failed(cell: Cell, exc: BaseException, settings: RunSettings) -> Outcome:
    """Record a cell's failure (its traceback in error.txt, a failed result.json) and return its outcome."""
    from bench.train import Diverged

    # a divergence is its own line (`cell X diverged at epoch 3, step 120: loss nan; try a lower lr`)
    message = (str(exc) if isinstance(exc, Diverged) else f"{type(exc).__name__}: {exc}").splitlines()[0]
    if distributed_rank() == 0:
        directory = cell_dir(settings.results_root, cell.grid, cell.cell_id)
        write_text(directory / ERROR, "".join(traceback.format_exception(exc)))  # never through a planted link
        write_record(directory, failed_record(cell, message))
    return Outcome(cell, "failed", message=message)


def _init_worker(threads: int, launcher_pid: int) -> None:
    import torch

    from bench.track import Tracker
    from launch.interrupts import install_in_worker
    from launch.worker_lifetime import die_with_parent

    die_with_parent(launcher_pid)  # a kill -9 of the launcher must not leave this worker training on
    install_in_worker()
    torch.set_num_threads(threads)
    Tracker.announce = False  # the launching process says once for all workers that tracking is offline


def waves(cells: list[Cell]) -> list[list[Cell]]:
    """Group cells so every cell's dependencies sit in an earlier wave."""
    present = {c.cell_id for c in cells}  # a dependency outside `cells` is already done
    remaining, placed, result = list(cells), set(), []
    while remaining:
        wave = [c for c in remaining if all(d in placed or d not in present for d in c.depends_on)]
        if not wave:
            raise ValueError("dependency cycle among cells: " + ", ".join(c.cell_id for c in remaining))
        result.append(wave)
        placed |= {c.cell_id for c in wave}
        remaining = [c for c in remaining if c.cell_id not in placed]
    return result


def plan_packs(cells: list[Cell], settings: RunSettings) -> list[list[Cell]]:
    """Group a wave's cells into packs: same pack key, same checkpoint epoch, at most `pack_size` each."""
    from bench.pack import pack_key
    from bench.train import checkpoint_epoch

    size = settings.pack
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        key = pack_key(cell)
        if key is None or size <= 1:
            groups[(cell.cell_id,)] = [cell]
            continue
        epoch = checkpoint_epoch(cell_dir(settings.results_root, cell.grid, cell.cell_id))
        groups.setdefault((key, epoch), []).append(cell)
    return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]


def start_launch_run(grid: Grid, cells: list[Cell], settings: RunSettings, launcher: str, tracker=None):
    """One MLflow parent run per launch of a grid, so the UI groups the runs it started; -> its id or None.

    A cell resumed from an earlier launch keeps the run (and parent) it started with.
    """
    from bench.provenance import git_commit
    from bench.track import RUN_KIND, Tracker
    from bench.track_runs import close_dead_launches, launch_tags

    tracker = tracker or Tracker(settings.tracking_uri, grid.name)
    if tracker.experiment_id is None and tracker.ensure_experiment() is None:
        return None
    close_dead_launches(tracker, tracker.experiment_id)  # killed launches left theirs RUNNING
    at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return tracker.start_parent(f"{grid.name} launch {at}", {
        RUN_KIND: "grid_launch", "grid": grid.name, "launcher": launcher, "git_commit": git_commit(),
        **launch_tags(), **({"reference": grid.reference} if grid.reference else {})},
        params={"cells": len(cells), "pack": settings.pack, "grid_file": str(grid.path)})


def run_cells(grid: Grid, cells: list[Cell], settings: RunSettings, workers: int = 1) -> RunSummary:
    summary = RunSummary()
    main = distributed_rank() == 0
    if settings.tracking_uri and main:
        from launch.sync import complete_tracking

        summary.experiment_id = complete_tracking(grid, cells, settings.results_root, settings.tracking_uri)
    pending = []
    for cell in cells:
        if cell_status(cell_dir(settings.results_root, grid.name, cell.cell_id)) == "done":
            summary.already_done += 1
        else:
            pending.append(cell)
    if not pending:
        return summary
    tracker = None
    if settings.tracking_uri and main:
        from bench.track import Tracker

        tracker = Tracker(settings.tracking_uri, grid.name)
        summary.experiment_id = tracker.ensure_experiment()  # once, before cells fan out: concurrent creation races
        summary.parent_run_id = start_launch_run(grid, pending, settings, "local", tracker)
        settings = dataclasses.replace(settings, parent_run_id=summary.parent_run_id)
    if workers > 1:
        settings = dataclasses.replace(settings, threads=max(1, allocated_cpus() // workers))
    from launch.progress import WorkProgress

    bar = WorkProgress(pending, grid.name, disable=not main)  # images x epochs, not cells: an ETA from the start
    from launch.wave_runner import WaveRunner

    launch = WaveRunner(settings, workers, summary, bar)
    try:
        with StopOnSignals(launch.worker_pids):
            launch.run(pending)
    except KeyboardInterrupt:  # a second signal: stop now, the running epochs are lost
        launch.kill_workers()
        raise
    finally:
        bar.close()
        launch.close()
        summary.interrupted = stop.requested()
        summary.pending = len(pending) - sum(o.status in ("done", "failed", "blocked", "skipped")
                                             for o in summary.outcomes)
        if tracker is not None:
            done = sum(o.status == "done" for o in summary.outcomes)
            tracker.log_metrics(summary.parent_run_id, {"cells_done": done, "cells_failed": len(summary.failed)})
            tracker.finish(summary.parent_run_id, "interrupted" if summary.interrupted else
                           "failed" if summary.failed or summary.lost or summary.pending else "done")
    return summary
