"""`reprogbench run --launcher local`: the pending cells here, in-process or in a pool of worker processes."""
from __future__ import annotations

import os
import sys
import time

from launch.launchers import EXIT_FAILED, LaunchJob, launcher


@launcher
class Local:
    name, command, option = "local", "run", "local"
    needs = "nothing: this machine's CPUs (or GPUs), or torchrun's ranks"
    summary = "run here (default)"
    takes_profile = False  # a Slurm profile (--profile and the Slurm flags)

    def launch(self, job: LaunchJob) -> int:
        from launch.local import distributed_rank, run_cells

        start = time.perf_counter()
        workers = 1 if "WORLD_SIZE" in os.environ else job.workers  # under torchrun, ranks share each cell
        summary = run_cells(job.grid, job.cells, job.settings, workers=workers)
        if distributed_rank() != 0:
            return EXIT_FAILED if summary.failed else 0
        report(job, summary, time.perf_counter() - start)
        if summary.interrupted:
            from launch.interrupts import exit_status

            done = summary.already_done + sum(o.status == "done" for o in summary.outcomes)
            print(f"interrupted: {done} cell(s) done, {summary.pending} pending; rerun the same command to continue",
                  file=sys.stderr)
            return exit_status(summary.interrupted)
        return EXIT_FAILED if summary.failed or summary.lost else 0


def report(job: LaunchJob, summary, seconds: float) -> None:
    """What a local run prints at its end: counts, the results table, where MLflow shows it, what failed."""
    from analysis.table import results_table
    from bench.track import Tracker
    from launch.mlflow_ui import mlflow_hint

    grid, settings = job.grid, job.settings
    ran = sum(o.status in ("done", "failed", "blocked") for o in summary.outcomes)
    skipped = sum(o.status == "skipped" for o in summary.outcomes)
    elsewhere = f", {skipped} skipped (another launch trains them)" if skipped else ""
    print(f"{grid.name}: {ran} cell(s) run, {summary.already_done} already done, {len(summary.failed)} failed"
          f"{elsewhere} ({seconds:.1f}s)")
    print(results_table(grid, job.cells, settings.results_root))
    offline = Tracker.offline_reason(settings.tracking_uri) or any(o.tracking_offline for o in summary.outcomes)
    if settings.tracking_uri and not offline:  # offline: said once already, with the `sync` to run
        print(mlflow_hint(settings.tracking_uri, grid.name, summary.experiment_id))
    for outcome in summary.failed + summary.lost:
        print(f"{outcome.status}: {outcome.cell.cell_id} {outcome.cell.name}: {outcome.message}", file=sys.stderr)
