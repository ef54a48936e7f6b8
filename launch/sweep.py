"""`reprogbench sweep GRID`: Ray Tune over each selected cell's search space, then the best config run once as a cell.

For each selected cell:
1. its dependencies (pretrain cells) run first, as normal cells (`launch.local.run_cells`);
2. Ray Tune samples `samples` configs from the cell's search space (`bench.grid.search_space`); each trial runs the
   same trainer as `reprogbench run` (`bench.train.run_pack`) with the test split left unread, and reports val
   accuracy and loss every epoch, so ASHA can stop weak trials early;
3. the trial with the best validation accuracy is chosen (validation only), and its config re-run once as a
   normal cell of the grid (its own cell_id, in the grid's results folder): the only read of the test split,
   recorded in `sweep.json` as the cell's tuned result beside the grid's own recipe.

Files, under `results/<grid>/sweeps/<cell_id>/`: `sweep.json` (options, trials, best, tuned result), `tune/` (Ray
Tune's experiment state), `trials/<trial_id>/` (each trial's checkpoint, history and record, as a cell's).
The same command resumes an interrupted sweep (`Tuner.restore`): a finished trial is never trained again
(its record is replayed to Ray), an interrupted one resumes from its last epoch's checkpoint.

MLflow: one parent run per cell's sweep, one child run per trial (`mlflow.parentRunId`), the best trial tagged
`best_trial`, the tuned re-run tagged `tuned_from`. The experiment is created once, before any trial starts.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from ray import tune

from bench.files import cell_dir, read_json, write_json, write_under
from bench.grid import Cell, Grid, max_of, override_cell
from bench.record import HistoryRow, cell_status, failed_record, read_record, write_record
from bench.track import PARENT_RUN, RUN_KIND
from launch.allocation import allocated_cpus
from launch.local import RunSettings, execute_pack, run_cells
from launch.ray_cluster import concurrency, connect, ray_space, searcher, trial_resources
from launch.sweep_records import (
    ENDED_FILE,
    EXPERIMENT,
    HISTORY_FILE,
    METRIC,
    PARENT_FILE,
    SUMMARY,
    TRIAL_FILE,
    TRIALS,
    SweepError,
    SweepOptions,
    SweepResult,
    best_trial,
    check_sweepable,
    config_text,
    previous_sweep,
    read_trials,
    run_id_of,
    sweep_dir,
)

# --------------------------------------------------------------------------- one trial (runs in a Ray worker)


def _report_row(row: Mapping[str, Any]) -> dict[str, float]:
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "best_val_acc", "elapsed_s")
    return {k: row[k] for k in keys}


def _with_best(history: list[HistoryRow]) -> list[dict]:
    best, rows = -1.0, []
    for row in history:
        best = max(best, row.val_acc)
        rows.append({**row.model_dump(), "best_val_acc": best})
    return rows


def _replayed(directory: Path) -> bool:
    """A trial that ended before the driver was killed (recorded done or failed, or stopped early and its stop
    line printed): give Ray its epochs again instead of training it again; -> whether it had ended."""
    record = read_record(directory)
    ended = read_json(directory / ENDED_FILE)
    if not (record and (record.done or record.failed)) and ended is None:
        return False
    if record and record.history:
        rows = [_report_row(row) for row in _with_best(record.history)]
    else:
        rows = [_report_row(row) for row in (read_json(directory / HISTORY_FILE) or {"epochs": []})["epochs"]]
    if ended is not None:
        rows = rows[:ended["epochs"]] or rows
    for row in rows:
        tune.report(row)
    return True


def run_trial(config: dict, base: Cell, settings: RunSettings, parent_run_id: Optional[str]) -> None:
    """One trial: the base cell with `config` applied, trained by the same trainer as `run`, test left unread."""
    import torch

    from bench.track import Tracker
    from bench.train import Diverged, EpochEnded, MLflowObserver, Observer, TrainContext, TrainOptions, run_pack

    torch.set_num_threads(settings.threads or allocated_cpus())  # Ray's OMP_NUM_THREADS: the trial's CPUs
    write_under(settings.results_root)  # a Ray worker process: links planted in the results are never followed
    trial_id = tune.get_context().get_trial_id()
    directory = sweep_dir(settings.results_root, base.grid, base.cell_id) / TRIALS / trial_id
    if _replayed(directory):
        return
    cell = override_cell(base, config)
    write_json(directory / TRIAL_FILE, {"trial_id": trial_id, "config": config, "cell_id": cell.cell_id,
                                        "name": cell.name, "spec": cell.spec})

    last = cell.spec["hparams"]["epochs"]

    class TrialReporter(Observer):
        def on_epoch(self, event: EpochEnded) -> None:
            row = {**event.row, "best_val_acc": event.best_val_acc}
            history = (read_json(directory / HISTORY_FILE) or {"epochs": []})["epochs"]
            write_json(directory / HISTORY_FILE, {"epochs": [*history, row]})
            if row["epoch"] < last:  # the last epoch is reported once the record is written: Ray ends the trial
                tune.report(_report_row(row))

    tags = {RUN_KIND: "sweep_trial", "sweep_of": base.cell_id, "trial_id": trial_id,
            **({PARENT_RUN: parent_run_id} if parent_run_id else {})}
    observers = [MLflowObserver(Tracker(settings.tracking_uri, base.grid), tags)] if settings.tracking_uri else []
    deps = {dep: cell_dir(settings.results_root, base.grid, dep) for dep in base.depends_on}
    options = TrainOptions(settings.cache_features, settings.compile, evaluate_test=False,
                           data_path=settings.data_path)
    try:
        [record] = run_pack([cell], [directory], TrainContext(settings.data_root, deps, options),
                            [*observers, TrialReporter()])
    except Diverged as exc:  # a config whose loss diverges is an outcome of the sweep, not a failure of it
        write_record(directory, failed_record(cell, str(exc)))
        return
    tune.report(_report_row(_with_best(record.history)[-1]))


# --------------------------------------------------------------------------- the driver


class TrialProgress(tune.Callback):
    """A line per finished trial (Ray's own tables are off), and the trial's MLflow run closed: ASHA ends a
    stopped trial's worker before the trial can close its run. Pickled with Ray Tune's state: plain data only."""

    def __init__(self, cell: Cell, directory: Path, samples: int, tracking_uri: Optional[str]):
        self.cell, self.directory, self.samples, self.tracking_uri = cell, directory, samples, tracking_uri

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.ended(trial, trials, failed=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.ended(trial, trials, failed=True)

    def ended(self, trial, trials, failed: bool) -> None:
        count = 1 + sum(t.status in (t.TERMINATED, t.ERROR) for t in trials if t is not trial)  # resumes included
        folder = self.directory / TRIALS / trial.trial_id
        record = read_record(folder)
        result = trial.last_result or {}
        epochs = result.get("epoch", 0)
        if not failed:  # before the line (see ENDED_FILE); an errored trial is left to resume_errored to retry
            write_json(folder / ENDED_FILE, {"epochs": epochs})
        failed = failed or bool(record and record.failed)
        how = "failed" if failed else ("done" if record and record.done else "stopped early")
        best = result.get("best_val_acc")
        why = f": {record.error}" if record and record.error else ""
        print(f"  trial {count}/{self.samples} {trial.trial_id} ({config_text(trial.config)}): {how} after "
              f"{epochs} epoch(s)" + (f", best val {best:.2f}%" if best is not None else "") + why, flush=True)
        run_id = run_id_of(folder)
        if self.tracking_uri and run_id:
            from bench.track import Tracker

            Tracker(self.tracking_uri, self.cell.grid).finish(
                run_id, "failed" if failed else "done", tags={"trial_state": how, "epochs_run": str(epochs)})


def sweep_cell(cell: Cell, settings: RunSettings, options: SweepOptions, log=print) -> SweepResult:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    directory = sweep_dir(settings.results_root, cell.grid, cell.cell_id).resolve()
    previous = previous_sweep(cell, settings.results_root, options)
    epochs = max_of(cell.search, "epochs", cell.spec["hparams"]["epochs"])
    summary = {"cell_id": cell.cell_id, "name": cell.name, "grid": cell.grid, "space": cell.search,
               "options": options.identity(), "status": "running"}
    write_json(directory / SUMMARY, {**(previous or {}), **summary})
    tracker, parent = _start_parent_run(cell, settings, options, directory)
    resources = trial_resources(options)
    trial_settings = dataclasses.replace(settings, threads=max(1, int(resources["cpu"])), pack=1)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base=cell, settings=trial_settings, parent_run_id=parent), resources)
    path = directory / EXPERIMENT
    # Ray saves its experiment state at most every 10 s by default; a resume needs the trials that ended
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0, no tables: TrialProgress prints a line each
    if tune.Tuner.can_restore(str(path)):
        log(f"  resuming the sweep in {path}")
        # its callbacks (this TrialProgress) come back with Ray Tune's state
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        scheduler = (ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=1,
                                   reduction_factor=options.reduction_factor)
                     if options.scheduler == "asha" else FIFOScheduler())
        tuner = tune.Tuner(
            trainable, param_space=ray_space(cell.search),
            tune_config=tune.TuneConfig(metric=METRIC, mode="max", num_samples=options.samples, scheduler=scheduler,
                                        search_alg=searcher(options, cell.seed, concurrency(options, resources))),
            run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(directory), verbose=0,
                                      callbacks=[TrialProgress(cell, directory, options.samples,
                                                               settings.tracking_uri)],
                                      failure_config=tune.FailureConfig(max_failures=0)))
    tuner.fit()
    summary = _finish_sweep(cell, summary, read_trials(directory, epochs), directory, settings, resources,
                            tracker, parent, log)
    return SweepResult(cell, summary)


def _start_parent_run(cell: Cell, settings: RunSettings, options: SweepOptions, directory: Path):
    """The sweep's MLflow parent run (its trials nest under it); -> (tracker, run id), both None untracked."""
    if not settings.tracking_uri:
        return None, None
    from bench.track import Tracker

    tracker = Tracker(settings.tracking_uri, cell.grid)
    parent = tracker.start_parent(
        f"sweep {cell.name}", {"grid": cell.grid, "method": cell.method, "backbone": cell.backbone,
                               "new_task": cell.task, "sweep_of": cell.cell_id, RUN_KIND: "sweep"},
        params={**options.identity(), **{f"space.{k}": v for k, v in cell.search.items()}},
        run_file=directory / PARENT_FILE)
    return tracker, parent


def _finish_sweep(cell: Cell, summary: dict, trials: list, directory: Path, settings: RunSettings,
                  resources: Mapping[str, float], tracker, parent: Optional[str], log) -> dict:
    """Choose the best trial on validation, run its config once as a cell, and write the sweep's summary."""
    best = best_trial(trials)
    summary = {**summary, "trials": trials, "best": best}
    if best is None:  # every trial failed (e.g. diverged in its first epoch): this cell fails, the next go on
        summary = {**summary, "status": "failed",
                   "error": f"no trial reported a validation accuracy; each trial's error is in {directory / SUMMARY}"}
        write_json(directory / SUMMARY, summary)
        if tracker is not None:
            tracker.finish(parent, "failed")
        return summary
    if tracker is not None:
        tracker.set_tags(best["mlflow_run_id"], {"best_trial": "true"})
        tracker.log_metrics(parent, {"best_val_acc": best["val_acc"]})
        tracker.set_tags(parent, {"best_trial_id": best["trial_id"],
                                  **{f"best.{k}": v for k, v in best["config"].items()}})
    tuned = run_tuned(cell, best, settings, resources, parent, log)
    summary = {**summary, "tuned": tuned, "status": "done" if tuned["status"] == "done" else "failed"}
    write_json(directory / SUMMARY, summary)
    if tracker is not None:
        if tuned.get("test_acc") is not None:
            tracker.log_metrics(parent, {"tuned_test_acc": tuned["test_acc"]})
        tracker.finish(parent, summary["status"])
    return summary


def run_tuned(cell: Cell, best: dict, settings: RunSettings, resources: Mapping[str, float],
              parent: Optional[str], log) -> dict:
    """The best config as a normal cell of the grid, run once (on a Ray worker with the trials' resources):
    the one read of the test split."""
    import ray

    tuned = override_cell(cell, best["config"])
    directory = cell_dir(settings.results_root, cell.grid, tuned.cell_id)
    if cell_status(directory) != "done":
        log(f"  best trial {best['trial_id']} (val {best['val_acc']:.2f}%): running its config once as cell "
            f"{tuned.cell_id}, the only read of the test split")
        tags = (("tuned_from", cell.cell_id), ("sweep_trial", best["trial_id"]),
                *((("sweep_run_id", parent),) if parent else ()))
        tuned_settings = dataclasses.replace(settings, threads=max(1, int(resources["cpu"])), pack=1, run_tags=tags)
        remote = ray.remote(num_cpus=resources["cpu"], num_gpus=resources["gpu"])(execute_pack)
        ray.get(remote.remote([tuned], tuned_settings))
    record = read_record(directory) or failed_record(tuned, "no record written")
    metrics = record.metrics
    return {"cell_id": tuned.cell_id, "name": tuned.name, "config": best["config"], "status": record.status,
            "val_acc": metrics.val_acc if metrics else None, "test_acc": metrics.test_acc if metrics else None,
            "error": record.error}


def sweep_cells(grid: Grid, cells: list[Cell], settings: RunSettings, options: SweepOptions,
                log=print) -> list[SweepResult]:
    """Dependencies first (as cells), then one sweep per cell with a search space, one after another."""
    settings = settings.absolute()  # Ray starts each trial in a folder of its own: a relative --results misleads it
    chosen = check_sweepable(grid, cells)
    previous = {c.cell_id: previous_sweep(c, settings.results_root, options) for c in chosen}  # before anything runs
    finished = {i for i, p in previous.items() if p and p.get("status") == "done"}
    if len(finished) == len(chosen):  # nothing to do: not even Ray is started
        for cell in chosen:
            log(f"{cell.cell_id} {cell.name}: swept before, nothing to do")
        return [SweepResult(c, previous[c.cell_id], skipped=True) for c in chosen]
    connect(options.address)  # a cluster that is not there is an error before anything runs
    needed = {d for c in chosen if c.cell_id not in finished for d in c.depends_on}
    dependencies = [c for c in cells if c.cell_id in needed]
    if dependencies:
        summary = run_cells(grid, dependencies, settings)
        if summary.failed:
            failed = summary.failed[0]
            raise SweepError(f"dependency {failed.cell.cell_id} ({failed.cell.name}) failed: {failed.message}")
    if settings.tracking_uri:  # once, before any trial: concurrent creation races
        from bench.track import Tracker

        Tracker(settings.tracking_uri, grid.name).ensure_experiment()
    results = []
    for i, cell in enumerate(chosen, 1):
        if cell.cell_id in finished:
            log(f"sweep {i}/{len(chosen)}: {cell.cell_id} {cell.name}: swept before, nothing to do")
            results.append(SweepResult(cell, previous[cell.cell_id], skipped=True))
            continue
        log(f"sweep {i}/{len(chosen)}: {cell.cell_id} {cell.name}: {options.samples} sample(s), "
            f"{options.scheduler}, {options.search} search over {', '.join(cell.search)}")
        results.append(sweep_cell(cell, settings, options, log))
    return results


