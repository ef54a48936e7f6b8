"""What a cell's MLflow run is called and how its metrics are named: the names the UI shows and the results URL
filters and sorts on (`launch.mlflow_ui.runs_url`)."""
from __future__ import annotations

from collections.abc import Mapping

from bench.record import COMPUTE_FIELDS, PHASES

# MLflow groups charts and the compare view by what comes before the first `/`. Stores written before the
# prefixes hold the bare names (`test_acc`, `val_acc`, ...): `legacy_name` maps back, and everything that reads a
# run (`report`, `sync`, the completeness check) looks for either.
_EPOCH = {"elapsed_s": "time/elapsed_s", "energy_j": "energy/so_far_j"}  # else epoch/<name>
_FINAL = {**{k: f"time/{k}" for k in (*PHASES, "total_s")}, "energy_j": "energy/total_j",
          **{k: f"compute/{k}" for k in COMPUTE_FIELDS}}  # else final/<name>
TEST_ACC = "final/test_acc"  # the figure the results table is sorted by
# MLflow's search syntax: a metric whose name is not a plain identifier is quoted with backticks
RESULTS_FILTER = f"metrics.`{TEST_ACC}` > 0"
RESULTS_ORDER_KEY = f"metrics.`{TEST_ACC}`"
# The results page is an MLflow "shared view": an experiment tag holding the page's filter, order and columns, which
# the UI applies when the URL names its key (`viewStateShareKey`). A URL alone can filter and sort but cannot pick
# columns, and the metrics would sit behind "Show more columns".
RESULTS_VIEW_KEY = "reprogbench-results"
RESULTS_VIEW_TAG = f"mlflow.sharedViewState.{RESULTS_VIEW_KEY}"
RESULTS_COLUMNS = (TEST_ACC, "final/best_val_acc", "time/total_s", "compute/cpu_s", "energy/total_j")


def results_view() -> str:
    """The shared view's JSON: cells only, best test accuracy first, these metrics as columns."""
    import json

    return json.dumps({"searchFilter": RESULTS_FILTER, "orderByKey": RESULTS_ORDER_KEY, "orderByAsc": False,
                       "selectedColumns": [f"metrics.`{name}`" for name in RESULTS_COLUMNS]})


def run_name(cell) -> str:
    """A cell's run name, led by what tells cells apart (the UI cuts long names at the end): the new task, the
    method with its parameters, the original model, the seed, e.g. `digits ar[lam=0.01] fashion_mnist/smallcnn
    s0`. A cell that trains an original: `fashion_mnist: scratch smallcnn (original) s0`."""
    if cell.makes_original:
        return f"{cell.original_label or cell.task}: {cell.method_label} {cell.backbone} (original) s{cell.seed}"
    original = cell.backbone if cell.spec["original"] is None else \
        f"{cell.original_label or cell.trained_on}/{cell.backbone}"
    return f"{cell.task} {cell.method_label} {original} s{cell.seed}"


def epoch_name(name: str) -> str:
    """The MLflow name of a history row's figure (`val_acc` -> `epoch/val_acc`), stepped by epoch."""
    return _EPOCH.get(name, f"epoch/{name}")


def final_name(name: str) -> str:
    """The MLflow name of a done cell's final figure (`test_acc` -> `final/test_acc`, `total_s` -> `time/total_s`)."""
    return _FINAL.get(name, f"final/{name}")


def epoch_metrics(row: Mapping[str, float]) -> dict[str, float]:
    return {epoch_name(k): v for k, v in row.items()}


def final_metrics(figures: Mapping[str, float]) -> dict[str, float]:
    return {final_name(k): v for k, v in figures.items()}


_LEGACY = {**{v: k for k, v in _EPOCH.items()}, **{v: k for k, v in _FINAL.items()}}


def legacy_name(name: str) -> str:
    """The bare name a store written before the prefixes holds for `name` (`final/test_acc` -> `test_acc`)."""
    return _LEGACY.get(name) or name.split("/", 1)[-1]


def metric_of(metrics: Mapping[str, float], name: str):
    """A final figure (by its bare name) from a run's metrics, under its prefixed name or the legacy one."""
    new = final_name(name)
    return metrics[new] if new in metrics else metrics.get(name)
