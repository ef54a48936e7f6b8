"""`reprogbench sync GRID`: upload to MLflow what the cells' local records hold and MLflow lacks.

Used after tracking was offline (the server was down at the start, or went away mid-run). Keyed by cell_id:
each cell with a record (done or failed) is looked up by its run file, then by its `cell_id` tag; a missing run
is created, an incomplete one (the server died mid-run) is completed: params, tags, every epoch's metrics (with
their steps), the final metrics, and the status. What is already there is left alone, so running sync twice
creates nothing the second time. Records are the source of truth; sync never trains and never changes them,
except to mark them synced.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.grid import Cell, Grid
from bench.track import MLFLOW_RUN, RESULT, RUN_KIND, Tracker, cell_dir, final_metrics, flatten, read_record, write_json

HISTORY_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "elapsed_s", "energy_j")


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


def cell_tags(cell: Cell, record: dict) -> dict[str, str]:
    """The tags `run_pack` gives a cell's run, rebuilt from the cell and its record."""
    tags = {"grid": cell.grid, "cell_id": cell.cell_id, "method": cell.method, "backbone": cell.backbone,
            "new_task": cell.task, "original_task": cell.trained_on or "none", "seed": str(cell.seed)}
    if record["status"] == "done":
        env = record["environment"]
        tags.update({"git_commit": env["git_commit"], "pack_size": str(record["pack"]["size"]),
                     "device_type": env["device_type"], "world_size": str(env["world_size"]),
                     "torch_threads": str(env["torch_threads"]), "energy_source": record["energy"]["source"]})
    return tags


def cell_params(cell: Cell, record: dict) -> dict[str, str]:
    from bench.redact import redact_text
    from bench.reference import thesis_params

    return {k: redact_text(str(v)) for k, v in {**flatten(record["spec"]), **thesis_params(cell)}.items()}


class Syncer:
    def __init__(self, uri: str, grid: Grid):
        self.tracker = Tracker(uri, grid.name, strict=True)  # a failure is an error here, never a silent skip
        self.client = self.tracker.client
        self.grid = grid

    def call(self, what: str, fn, *args, **kwargs):
        return self.tracker.call(what, fn, *args, **kwargs)

    def experiment(self) -> str:
        return self.tracker.ensure_experiment()

    def find(self, experiment_id: str, cell_id: str, directory: Path) -> list:
        """This cell's runs in the experiment (a sweep's trials, which also name a cell_id, left out)."""
        runs = self.call("search runs", self.client.search_runs, [experiment_id], f"tags.cell_id = '{cell_id}'",
                         max_results=1000)
        runs = [r for r in runs if RUN_KIND not in r.data.tags]
        run_file = directory / MLFLOW_RUN
        if run_file.is_file():  # the run this cell started: first, so it is the one kept
            mine = run_file.read_text().strip()
            runs.sort(key=lambda r: r.info.run_id != mine)
        return runs

    def sync_cell(self, experiment_id: str, cell: Cell, directory: Path, record: dict,
                  summary: SyncSummary) -> None:
        from mlflow.entities import Metric, Param, RunTag

        cell_id = cell.cell_id
        now = int(time.time() * 1000)
        runs = self.find(experiment_id, cell_id, directory)
        if len(runs) > 1:
            summary.duplicates[cell_id] = len(runs)
        created = not runs
        if created:
            run = self.call("create run", self.client.create_run, experiment_id, run_name=record["name"],
                            tags=cell_tags(cell, record))
            (directory / MLFLOW_RUN).write_text(run.info.run_id)
        else:
            run = runs[0]
        run_id = run.info.run_id
        changed = False

        have_params = run.data.params
        params = [Param(k, str(v)) for k, v in cell_params(cell, record).items() if k not in have_params]
        tags = [RunTag(k, v) for k, v in cell_tags(cell, record).items() if run.data.tags.get(k) != v]
        metrics = []
        if record["status"] == "done":
            epochs = record["spec"]["hparams"]["epochs"]
            for key in HISTORY_KEYS:
                have = {m.step for m in self.call("read metrics", self.client.get_metric_history, run_id, key)}
                metrics += [Metric(key, float(row[key]), now, row["epoch"]) for row in record["history"]
                            if row.get(key) is not None and row["epoch"] not in have]
            metrics += [Metric(k, float(v), now, epochs) for k, v in final_metrics(record).items()
                        if v is not None and k not in run.data.metrics]
        for start in range(0, max(len(params), len(tags), len(metrics)), 500):  # MLflow takes 1000 per batch
            self.call("upload", self.client.log_batch, run_id, metrics=metrics[start:start + 500],
                      params=params[start:start + 500], tags=tags[start:start + 500])
        changed = bool(params or tags or metrics)
        status = "FINISHED" if record["status"] == "done" else "FAILED"
        if run.info.status != status:
            self.call("end run", self.client.set_terminated, run_id, status)
            changed = True
        if created:
            summary.created.append(cell_id)
        elif changed:
            summary.completed.append(cell_id)
        else:
            summary.complete.append(cell_id)
        tracking = self.tracker.sync_state(run_id).model_copy(update={"synced": True}).model_dump()
        if record.get("tracking") != tracking or record.get("mlflow_run_id") != run_id:
            record.update(tracking=tracking, mlflow_run_id=run_id)
            write_json(directory / RESULT, record)


def sync_grid(grid: Grid, cells: list[Cell], results_root: Path, uri: str) -> SyncSummary:
    """Every recorded cell of `cells` into the grid's MLflow experiment, exactly once each."""
    syncer = Syncer(uri, grid)
    summary = SyncSummary()
    experiment_id = syncer.experiment()
    for cell in cells:
        directory = cell_dir(results_root, grid.name, cell.cell_id)
        record = read_record(directory)
        if record is None or record.get("status") not in ("done", "failed"):
            summary.no_record += 1
            continue
        syncer.sync_cell(experiment_id, cell, directory, record, summary)
    return summary
