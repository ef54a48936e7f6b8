"""What a sweep writes and how it is read back, without Ray: options, file layout, trials, the results table.

Under `results/<grid>/sweeps/<cell_id>/`: `sweep.json` (options, space, trials, best, tuned result), `tune/`
(Ray Tune's experiment state), `trials/<trial_id>/` (each trial's `trial.json` config, `history.json` epochs, and
checkpoint and record as a cell's).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bench.files import MLFLOW_RUN, cell_dir, own_file, read_json
from bench.grid import Cell, Grid, GridError, short_value
from bench.record import read_record

SWEEPS, TRIALS, SUMMARY = "sweeps", "trials", "sweep.json"
TRIAL_FILE, HISTORY_FILE = "trial.json", "history.json"  # per trial: its config; its epochs so far
PARENT_FILE = "mlflow_parent_run_id"
EXPERIMENT = "tune"  # Ray Tune's experiment folder under the sweep's folder
METRIC = "val_acc"  # what selection and ASHA use: validation only
SCHEDULERS, SEARCHES = ("asha", "fifo"), ("random", "optuna")


class SweepError(RuntimeError):
    """A sweep that cannot start (no Ray cluster at --address, options that differ from the sweep's on disk)."""


@dataclass(frozen=True)
class SweepOptions:
    samples: int
    scheduler: str = "asha"
    search: str = "random"
    max_concurrent: Optional[int] = None  # None: as many as the cluster's CPUs / GPUs allow
    address: Optional[str] = None  # None: start Ray on this machine; "auto" or host:port: join that cluster
    cpus_per_trial: float = 1.0
    gpus_per_trial: Optional[float] = None  # None: 1 when the cluster has GPUs, else 0
    reduction_factor: int = 2  # ASHA keeps the best 1/rf of trials at each rung (epochs 1, rf, rf^2, ...)

    def __post_init__(self):
        if self.samples < 1:
            raise GridError(f"--samples {self.samples}: a sweep needs at least 1 sample")
        if self.scheduler not in SCHEDULERS:
            raise GridError(f"--scheduler {self.scheduler!r}: one of {', '.join(SCHEDULERS)}")
        if self.search not in SEARCHES:
            raise GridError(f"--search {self.search!r}: one of {', '.join(SEARCHES)}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise GridError(f"--max-concurrent {self.max_concurrent}: at least 1")
        if self.cpus_per_trial <= 0 or (self.gpus_per_trial or 0) < 0:
            raise GridError("--cpus-per-trial must be above 0 and --gpus-per-trial at least 0")
        if self.reduction_factor < 2:
            raise GridError(f"--reduction-factor {self.reduction_factor}: at least 2")

    def identity(self) -> dict:
        """What makes two sweeps of a cell the same sweep (a resume must not change it)."""
        return {"samples": self.samples, "scheduler": self.scheduler, "search": self.search,
                "reduction_factor": self.reduction_factor}


@dataclass
class SweepResult:
    cell: Cell
    summary: dict  # what sweep.json holds
    skipped: bool = False  # swept before: nothing ran


def sweep_dir(results_root: Path, grid: str, cell_id: str) -> Path:
    return Path(results_root) / grid / SWEEPS / cell_id


def previous_sweep(cell: Cell, results_root: Path, options: SweepOptions) -> Optional[dict]:
    """The summary of an earlier sweep of this cell, if any; a resume must not change what is being swept."""
    directory = sweep_dir(results_root, cell.grid, cell.cell_id)
    previous = read_json(directory / SUMMARY)
    if previous and previous["options"] != options.identity():
        raise SweepError(f"cell {cell.cell_id} was swept with {previous['options']}, not {options.identity()}: "
                         f"rerun with those options to resume it, or remove {directory} to start again")
    return previous


def sweepable(cells: list[Cell]) -> list[Cell]:
    return [c for c in cells if c.search]


def check_sweepable(grid: Grid, cells: list[Cell]) -> list[Cell]:
    chosen = sweepable(cells)
    if not chosen:
        methods = sorted({c.method for c in cells})
        raise GridError(f"{grid.name}: no selected cell has a search space (methods: {', '.join(methods)}); give "
                        "a method entry `search: {lr: {loguniform: [1.0e-4, 0.1]}}`, or --filter other cells")
    return chosen


def read_trials(directory: Path, epochs: int) -> list[dict]:
    """Every trial of a sweep from its own files: config, epochs run, best val accuracy, how it ended."""
    trials = []
    for folder in sorted((directory / TRIALS).glob("*/")):
        meta = read_json(folder / TRIAL_FILE)
        if meta is None:
            continue
        record = read_record(folder)
        scores = [(row.epoch, row.val_acc) for row in record.history] if record and record.history else \
            [(row["epoch"], row["val_acc"]) for row in (read_json(folder / HISTORY_FILE) or {"epochs": []})["epochs"]]
        if record is not None:
            state = record.status
        else:
            state = f"stopped at epoch {len(scores)}" if scores else "not started"
        best_epoch, best_val = max(scores, key=lambda score: score[1]) if scores else (None, None)
        trials.append({"trial_id": meta["trial_id"], "config": meta["config"], "cell_id": meta["cell_id"],
                       "state": state, "epochs": len(scores), "of_epochs": epochs,
                       "val_acc": best_val, "best_epoch": best_epoch,
                       "error": record.error if record else None,
                       "mlflow_run_id": run_id_of(folder)})
    return trials


def run_id_of(folder: Path) -> Optional[str]:
    path = folder / MLFLOW_RUN
    return path.read_text().strip() if own_file(path) else None


def best_trial(trials: list[dict]) -> Optional[dict]:
    """Highest validation accuracy; ties go to the trial that trained less (fewer epochs), then to its id."""
    scored = [t for t in trials if t["val_acc"] is not None]
    return max(scored, key=lambda t: (t["val_acc"], -t["epochs"], t["trial_id"]), default=None)


def config_text(config: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={short_value(v)}" for k, v in config.items())


def results_table(results: list[SweepResult], results_root: Path) -> str:
    """Per cell: the best config, its val accuracy, the tuned re-run's test accuracy, beside the grid's recipe."""
    from tabulate import tabulate

    rows = []
    for r in results:
        s, tuned, best = r.summary, r.summary.get("tuned") or {}, r.summary.get("best") or {}
        recipe = read_record(cell_dir(results_root, r.cell.grid, r.cell.cell_id))
        recipe_test = recipe.metrics.test_acc if recipe and recipe.done else "not run"
        states = [t["state"].split(" at ")[0] for t in s.get("trials", [])]
        counts = ", ".join(f"{states.count(k)} {k}" for k in sorted(set(states)))
        config = config_text(best.get("config") or {})
        rows.append([r.cell.cell_id, r.cell.name, config or "-", best.get("val_acc"), tuned.get("test_acc"),
                     recipe_test, tuned.get("cell_id", "-"), counts])
    return tabulate(rows, headers=["cell_id", "cell (grid's recipe)", "best config", "best val %", "tuned test %",
                                   "recipe test %", "tuned cell", "trials"], floatfmt=".2f", missingval="-")
