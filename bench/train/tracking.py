"""The MLflow run of each cell, driven by the trainer's events (`bench.track.Tracker` makes the calls).

Start: the run (a resumed cell continues its own) with its tags, the spec and the published figure as params.
Each epoch: the history row as metrics at step = epoch. End: the record says unsynced until the last call went
through; final metrics at step = epochs, result.json and the learning curve as artifacts, the one-line
description and the task as a dataset input (`bench.track_artifacts`), the run FINISHED, then the record marked
synced. Failure: FAILED, or
KILLED when interrupted (the rerun that resumes the cell sets it RUNNING again).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import torch

from bench.provenance import git_commit
from bench.record import CellRecord
from bench.reference import thesis_params
from bench.track import Tracker
from bench.track_artifacts import log_cell_extras
from bench.track_names import epoch_metrics, final_metrics
from bench.train.events import Ended, EpochEnded, Failed, Observer, Started


class MLflowObserver(Observer):
    """`tags` are added to every cell's run (e.g. `PARENT_RUN`: the launch or sweep it is nested under)."""

    def __init__(self, tracker: Tracker, tags: Optional[Mapping[str, str]] = None):
        self.tracker, self.tags = tracker, dict(tags or {})
        self.run_ids: dict[str, Optional[str]] = {}  # by cell_id

    def on_start(self, event: Started) -> None:
        cell = event.cell
        tags = {"grid": cell.grid, "method": cell.method, "backbone": cell.backbone, "new_task": cell.task,
                "git_commit": git_commit(), "pack_size": str(event.pack_size), "device_type": event.device_type,
                "world_size": str(event.world_size), "torch_threads": str(torch.get_num_threads()), **self.tags,
                "cell_id": cell.cell_id, "original_task": cell.trained_on or "none", "seed": str(cell.seed)}
        run_id = self.run_ids[cell.cell_id] = self.tracker.start(cell, event.directory, tags)
        self.tracker.log_params(run_id, thesis_params(cell))  # the published figure, beside the spec

    def on_epoch(self, event: EpochEnded) -> None:
        metrics = epoch_metrics({k: v for k, v in event.row.items() if k != "epoch"})
        self.tracker.log_metrics(self.run_ids.get(event.cell.cell_id), metrics, step=event.epoch)

    def annotate(self, record: CellRecord) -> None:
        run_id = self.run_ids.get(record.cell_id)
        record.mlflow_run_id = run_id
        # unsynced until its last MLflow call went through (`reprogbench sync`)
        record.tracking = self.tracker.sync_state(run_id).model_copy(update={"synced": False})

    def on_end(self, event: Ended) -> None:
        run_id, record = self.run_ids.get(event.cell.cell_id), event.record
        epochs = event.cell.spec["hparams"]["epochs"]
        self.tracker.log_metrics(run_id, final_metrics(record.final_metrics()), step=epochs)
        # before FINISHED, so a run shown as finished already has its record, curve, description and dataset
        log_cell_extras(self.tracker, run_id, event.directory, record)
        self.tracker.finish(run_id, "done", tags={"energy_source": record.energy.source})
        self.tracker.mark_synced(event.directory, record, run_id)

    def on_failure(self, event: Failed) -> None:
        self.tracker.finish(self.run_ids.get(event.cell.cell_id), "interrupted" if event.interrupted else "failed")
