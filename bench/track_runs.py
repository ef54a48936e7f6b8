"""Which MLflow run is a cell's, and what it still lacks: the checks that make a cell's run idempotent.

A cell's run is found by its `cell_id` tag (set when the run is created) before one is created, so a kill between
creating the run and writing its id into the cell's folder never makes a second run. What a run should hold is
read from the cell's record (every epoch's row, the final figures) and compared with what MLflow holds: a record
is `synced` only when nothing is missing, and the missing points are what the next `run` or `sync` uploads.
"""
from __future__ import annotations

import math
import os
import socket
from pathlib import Path
from typing import Optional

from bench.files import MLFLOW_RUN, own_file
from bench.record import CellRecord
from bench.track_names import epoch_name, final_name, legacy_name

RUN_KIND = "reprogbench.run_kind"  # on runs that are not cells: grid_launch, report, sweep, sweep_trial
LAUNCH_HOST, LAUNCH_PID = "launch_host", "launch_pid"  # on a launch's parent run: who can tell it died


def cell_runs(tracker, experiment_id: str, cell_id: str, directory: Optional[Path] = None) -> list:
    """The cell's runs in the experiment (a sweep's trials, which also name a cell_id, left out); the one the
    cell's run file names first, so it is the one kept. None: the store failed."""
    runs = tracker.call("search runs", tracker.client.search_runs, [experiment_id],
                        f"tags.cell_id = '{cell_id}'", max_results=1000)
    if runs is None:
        return None
    runs = [r for r in runs if RUN_KIND not in r.data.tags]
    run_file = Path(directory) / MLFLOW_RUN if directory is not None else None
    if run_file is not None and own_file(run_file):
        mine = run_file.read_text().strip()
        runs.sort(key=lambda r: r.info.run_id != mine)
    else:  # the oldest: what a rerun found first last time too
        runs.sort(key=lambda r: r.info.start_time or 0)
    return runs


def expected_points(record: CellRecord) -> dict[str, list[tuple[int, float]]]:
    """Every metric point a cell's run must hold: key (as logged today) -> [(step, value)]: epoch rows at
    step = epoch, a done cell's final figures at step = epochs."""
    points: dict[str, list[tuple[int, float]]] = {}
    for row in record.history:
        for key, value in row.metrics().items():
            points.setdefault(epoch_name(key), []).append((row.epoch, float(value)))
    if record.done:
        epochs = record.spec["hparams"]["epochs"]
        for key, value in record.final_metrics().items():
            if value is not None:
                points.setdefault(final_name(key), []).append((epochs, float(value)))
    return points


def _holds(history, step: int, value: float) -> bool:
    return any(m.step == step and math.isclose(m.value, value, rel_tol=1e-9, abs_tol=1e-12) for m in history)


def missing_metrics(tracker, run_id: str, record: CellRecord) -> Optional[list]:
    """The points of `expected_points` the run does not hold (as MLflow Metrics, ready to log), a point logged
    under its legacy bare name counting as held; None: the store failed, so nothing can be said."""
    import time

    from mlflow.entities import Metric

    run = tracker.call("read run", tracker.client.get_run, run_id)
    if run is None:
        return None
    present, now, missing = set(run.data.metrics), int(time.time() * 1000), []
    for key, steps in expected_points(record).items():
        history = []
        for name in {key, legacy_name(key)} & present:  # a key the run has no point of needs no read
            read = tracker.call("read metrics", tracker.client.get_metric_history, run_id, name)
            if read is None:
                return None
            history += read
        missing += [Metric(key, value, now, step) for step, value in steps if not _holds(history, step, value)]
    return missing


def launch_tags() -> dict[str, str]:
    """What a launch's parent run says about the process that launched it, so a later launch can tell it died."""
    return {LAUNCH_HOST: socket.gethostname(), LAUNCH_PID: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def close_dead_launches(tracker, experiment_id: str) -> list[str]:
    """Parent runs of launches from this host whose process is gone, still RUNNING (killed before they could end
    them): set KILLED. A launch on another host is left alone: from here its process cannot be seen. -> their ids."""
    runs = tracker.call("search runs", tracker.client.search_runs, [experiment_id],
                        f"tags.`{RUN_KIND}` = 'grid_launch' and attributes.status = 'RUNNING'", max_results=1000)
    closed = []
    for run in runs or []:
        tags = run.data.tags
        pid = tags.get(LAUNCH_PID, "")
        if tags.get(LAUNCH_HOST) != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
            continue
        tracker.call("end run", tracker.client.set_terminated, run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    return closed
