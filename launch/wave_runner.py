"""One local launch's waves, packs and pool: what `launch.local.run_cells` drives once it has listed the pending
cells. Each wave's packs run in this process or on a pool of worker processes (spawned, dying with the launcher:
`launch.worker_lifetime`); each pack takes its cells' locks first (`launch.local.execute_claimed`)."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Optional

from bench import stop
from bench.files import cell_dir, remove_leftover_temporaries
from bench.grid import Cell
from launch.local import (
    Outcome,
    RunSettings,
    RunSummary,
    _init_worker,
    execute_claimed,
    execute_pack_in_worker,
    plan_packs,
    waves,
)
from launch.progress import WorkProgress


class WaveRunner:
    """One launch's waves, one after another: each wave's packs in this process or on a pool of `workers`
    processes (started on first use, replaced after a worker dies); a failed cell blocks the cells that need it."""

    def __init__(self, settings: RunSettings, workers: int, summary: RunSummary, bar: WorkProgress):
        self.settings, self.workers, self.summary, self.bar = settings, workers, summary, bar
        self.pool: Optional[ProcessPoolExecutor] = None
        self.failed: set[str] = set()
        self.skipped: set[str] = set()  # trained by another launch: their dependents wait for it, skipped too

    def worker_pids(self) -> list[int]:
        return list((getattr(self.pool, "_processes", None) or {}).keys())

    def run(self, pending: list[Cell]) -> None:
        for wave in waves(pending):
            if stop_before_next_pack():
                break
            self.run_wave(wave)

    def run_wave(self, wave: list[Cell]) -> None:
        runnable = []
        for cell in wave:
            blocked_by = [d for d in cell.depends_on if d in self.failed]
            waits_for = [d for d in cell.depends_on if d in self.skipped]
            if blocked_by:
                self.failed.add(cell.cell_id)
                _report(self.bar, Outcome(cell, "blocked", message=f"its dependency {blocked_by[0]} failed"),
                        self.summary)
            elif waits_for:
                self.skipped.add(cell.cell_id)
                _report(self.bar, Outcome(cell, "skipped", message=f"cell {cell.cell_id} needs {waits_for[0]}, "
                                          "which another launch trains; skipped"), self.summary)
            else:
                runnable.append(cell)
        for outcome in self.outcomes(plan_packs(runnable, self.settings)):
            if outcome.status == "skipped":
                self.skipped.add(outcome.cell.cell_id)
            elif outcome.status != "done":
                self.failed.add(outcome.cell.cell_id)
            _report(self.bar, outcome, self.summary, self.settings.tracking_uri)
        if self.pool is not None and getattr(self.pool, "_broken", False):
            # a worker died; the next wave gets a fresh pool. Waiting joins the broken pool's threads now:
            # left running, they can fail on closed pipes at interpreter exit (a traceback after all)
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
            # every worker is gone now: a lost cell's half-written checkpoint (killed mid-save) is deleted, its
            # last complete one stays for the rerun
            for outcome in self.summary.lost:
                cell = outcome.cell
                remove_leftover_temporaries(cell_dir(self.settings.results_root, cell.grid, cell.cell_id))

    def outcomes(self, packs: list[list[Cell]]):
        if self.workers <= 1:
            return self._sequential_outcomes(packs)
        self.pool = self.pool or ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                                     initializer=_init_worker,
                                                     initargs=(self.settings.threads, os.getpid()))
        return _pool_outcomes(self.pool, packs, self.settings, self.bar)

    def _sequential_outcomes(self, packs: list[list[Cell]]):
        for pack in packs:
            if stop_before_next_pack():
                return
            self.bar.start(pack)
            yield from execute_claimed(pack, self.settings, log_epochs=not self.bar.disable)

    def kill_workers(self) -> None:
        for process in (getattr(self.pool, "_processes", None) or {}).values():
            process.kill()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def stop_before_next_pack() -> bool:
    """Whether to start no further pack. Under torchrun the ranks would not agree on it (each got the signal at
    its own moment): every pack starts, and the trainer stops them all at the same epoch boundary."""
    return stop.requested() is not None and int(os.environ.get("WORLD_SIZE", "1")) == 1


def _pool_outcomes(pool: ProcessPoolExecutor, packs: list[list[Cell]], settings: RunSettings, bar: WorkProgress):
    """Each pack's outcomes as its worker returns them. A worker that dies (kill -9, out of memory) breaks the
    pool: the cells it and the other workers were running are `lost` (not recorded; a rerun resumes them from
    their last checkpoint), and packs not started are not run."""
    futures = {pool.submit(execute_pack_in_worker, pack, settings): pack for pack in packs}
    for pack in packs:
        bar.start(pack)  # submitted: a worker takes it up as soon as one is free
    for future in as_completed(futures):
        if stop.requested():
            for other in futures:
                other.cancel()  # not started yet: nothing to save
        if future.cancelled():
            continue
        try:
            yield from future.result()
        except BrokenProcessPool:
            yield from (Outcome(c, "lost", message="its worker process died (killed, or out of memory); rerun "
                                "to resume it from its last checkpoint") for c in futures[future])


def _report(bar: WorkProgress, outcome: Outcome, summary: RunSummary, tracking_uri: Optional[str] = None) -> None:
    summary.outcomes.append(outcome)
    cell = outcome.cell
    if outcome.tracking_offline and tracking_uri:
        from bench.track import announce_offline

        announce_offline(tracking_uri, cell.grid, outcome.tracking_offline)
    if outcome.status == "done":
        rec = outcome.record
        line = (f"done    {cell.cell_id}  {cell.name}: test {rec.metrics.test_acc:.2f}%  "
                f"({rec.timing.total_s:.1f}s)")
    elif outcome.status == "skipped":
        line = outcome.message
    else:
        line = f"{outcome.status:<7} {cell.cell_id}  {cell.name}: {outcome.message}"
    bar.write(line)
    bar.finish(cell)
