"""`reprogbench sync GRID`: upload to MLflow what the cells' local records hold and MLflow lacks.

Used after tracking was offline (the server was down at the start, or went away mid-run). Keyed by cell_id:
each cell with a record (done or failed) is looked up by its run file, then by its `cell_id` tag; a missing run
is created, an incomplete one (the server died mid-run) is completed: params, tags, every epoch's metrics (with
their steps), the final metrics, and the status. What is already there is left alone, so running sync twice
creates nothing the second time. Records are the source of truth; sync never trains and never changes them,
except to mark them synced.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from bench.files import MLFLOW_RUN, cell_dir, write_text
from bench.grid import Cell, Grid
from bench.record import CellRecord, read_record, write_record
from bench.track import Tracker, flatten
from bench.track_names import run_name
from bench.track_runs import cell_runs, missing_metrics


@dataclass
class SyncSummary:
    created: list[str] = field(default_factory=list)  # cell_ids whose run sync made
    completed: list[str] = field(default_factory=list)  # runs that existed, with something missing
    complete: list[str] = field(default_factory=list)  # nothing to do
    no_record: int = 0  # pending cells: nothing to upload
    duplicates: dict[str, int] = field(default_factory=dict)  # cell_id -> runs found (more than one)

    def line(self, grid: str) -> str:
        synced = len(self.created) + len(self.completed) + len(self.complete)
        text = (f"{grid}: {synced} cell(s) in MLflow: {len(self.created)} uploaded, {len(self.completed)} completed, "
                f"{len(self.complete)} already complete; {self.no_record} without a record (not run yet)")
        if self.duplicates:
            text += (f"; {len(self.duplicates)} cell(s) have more than one run (made before sync existed): "
                     + ", ".join(f"{c} x{n}" for c, n in sorted(self.duplicates.items())))
        return text


def cell_tags(cell: Cell, record: CellRecord) -> dict[str, str]:
    """The tags `run_pack` gives a cell's run, rebuilt from the cell and its record."""
    tags = {"grid": cell.grid, "cell_id": cell.cell_id, "method": cell.method, "backbone": cell.backbone,
            "new_task": cell.task, "original_task": cell.trained_on or "none", "seed": str(cell.seed)}
    if record.done:
        env = record.environment
        tags.update({"git_commit": env.git_commit, "pack_size": str(record.pack.size),
                     "device_type": env.device_type, "world_size": str(env.world_size),
                     "torch_threads": str(env.torch_threads), "energy_source": record.energy.source})
    return tags


def cell_params(cell: Cell, record: CellRecord) -> dict[str, str]:
    from bench.redact import redact_text
    from bench.reference import thesis_params

    return {k: redact_text(str(v)) for k, v in {**flatten(record.spec), **thesis_params(cell)}.items()}


class Syncer:
    """`strict`: a store failure raises (`sync`); otherwise tracking goes offline, said once (`run`)."""

    def __init__(self, uri: str, grid: Grid, strict: bool = True):
        self.tracker = Tracker(uri, grid.name, strict=strict)
        self.client = self.tracker.client
        self.grid = grid

    def call(self, what: str, fn, *args, **kwargs):
        return self.tracker.call(what, fn, *args, **kwargs)

    def experiment(self) -> str:
        return self.tracker.ensure_experiment()

    def sync_cell(self, experiment_id: str, cell: Cell, directory: Path, record: CellRecord,
                  summary: SyncSummary) -> None:
        from mlflow.entities import Param, RunTag

        cell_id = cell.cell_id
        runs = cell_runs(self.tracker, experiment_id, cell_id, directory)
        if runs is None:  # offline (not strict): said once already
            return
        if len(runs) > 1:
            summary.duplicates[cell_id] = len(runs)
        created = not runs
        if created:
            run = self.call("create run", self.client.create_run, experiment_id, run_name=run_name(cell),
                            tags=cell_tags(cell, record))
            if run is None:
                return
            write_text(directory / MLFLOW_RUN, run.info.run_id)
        else:
            run = runs[0]
        run_id = run.info.run_id

        have_params = run.data.params
        params = [Param(k, str(v)) for k, v in cell_params(cell, record).items() if k not in have_params]
        tags = [RunTag(k, v) for k, v in cell_tags(cell, record).items() if run.data.tags.get(k) != v]
        if params or tags:
            self.call("upload", self.client.log_batch, run_id, params=params, tags=tags)
        metrics = missing_metrics(self.tracker, run_id, record)
        if metrics is None:
            return
        for start in range(0, len(metrics), 500):  # MLflow takes 1000 per batch
            self.call("upload", self.client.log_batch, run_id, metrics=metrics[start:start + 500])
        changed = bool(params or tags or metrics)
        status = "FINISHED" if record.done else "FAILED"
        if run.info.status != status:
            self.call("end run", self.client.set_terminated, run_id, status)
            changed = True
        if self.tracker.offline:
            return
        if created:
            summary.created.append(cell_id)
        elif changed:
            summary.completed.append(cell_id)
        else:
            summary.complete.append(cell_id)
        # compared, not assumed: synced once MLflow holds every point the record has
        synced = missing_metrics(self.tracker, run_id, record) == []
        tracking = self.tracker.sync_state(run_id).model_copy(update={"synced": synced})
        if record.tracking != tracking or record.mlflow_run_id != run_id:
            record.tracking, record.mlflow_run_id = tracking, run_id
            write_record(directory, record)


def sync_grid(grid: Grid, cells: list[Cell], results_root: Path, uri: str) -> SyncSummary:
    """Every recorded cell of `cells` into the grid's MLflow experiment, exactly once each."""
    syncer = Syncer(uri, grid)
    summary = SyncSummary()
    experiment_id = syncer.experiment()
    for cell in cells:
        directory = cell_dir(results_root, grid.name, cell.cell_id)
        record = read_record(directory)
        if record is None:
            summary.no_record += 1
            continue
        syncer.sync_cell(experiment_id, cell, directory, record, summary)
    return summary


def complete_unsynced(grid: Grid, cells: list[Cell], results_root: Path, uri: str) -> SyncSummary:
    """What `run` does before it trains: the done cells whose record is not synced (a kill came between their
    last epoch and their last MLflow call, or tracking was offline) are completed in MLflow, as `sync` would;
    a store that fails sends tracking offline, said once, instead of stopping the launch."""
    syncer, summary = None, SyncSummary()
    for cell in cells:
        directory = cell_dir(results_root, grid.name, cell.cell_id)
        record = read_record(directory)
        if record is None or not record.done or record.tracking is None or record.tracking.synced:
            continue
        syncer = syncer or Syncer(uri, grid, strict=False)
        experiment_id = syncer.experiment()
        if experiment_id is None:
            break
        syncer.sync_cell(experiment_id, cell, directory, record, summary)
    return summary


def complete_tracking(grid: Grid, cells: list[Cell], results_root: Path, uri: str) -> Optional[str]:
    """Before a launch trains: done cells whose MLflow run a kill (or an outage) left incomplete are completed,
    as `sync` would; -> the grid's experiment id (also on a rerun with nothing to train, for the printed URL)."""
    from tqdm import tqdm  # writes above a progress bar instead of through it

    from bench.track_runs import close_dead_launches

    tracker = Tracker(uri, grid.name)
    experiment_id = tracker.ensure_experiment()
    if experiment_id is None:  # offline: said once already
        return None
    close_dead_launches(tracker, experiment_id)  # killed launches left theirs RUNNING
    completed = complete_unsynced(grid, cells, results_root, uri)
    if completed.created or completed.completed:
        tqdm.write(f"MLflow: completed {len(completed.created) + len(completed.completed)} run(s) an earlier launch "
                   "left incomplete", file=sys.stderr)
    return experiment_id
