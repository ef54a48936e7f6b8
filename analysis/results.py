"""A grid's results as the report reads them: each cell's record, or its MLflow run where no record is on disk
(results written on another machine that shares only the tracking server). Reads only; never trains.

Cells that differ only in their seed form one `Setup`; the report gives each figure across its seeds.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from analysis.errors import StoreUnreadable
from bench.files import cell_dir
from bench.grid import Cell, Grid, canonical_json
from bench.methods import METHODS, Method
from bench.record import COMPUTE_FIELDS, PHASES, CellRecord, HistoryRow, read_record
from bench.track import PARENT_RUN, RUN_KIND, sqlite_path


def method_of(cell: Cell) -> Method:
    return METHODS.get(cell.method)


@dataclass
class CellResult:
    cell: Cell
    status: str  # done | failed | pending
    record: Optional[CellRecord] = None  # a done cell's record (from result.json, or rebuilt from its MLflow run)
    source: str = ""  # record | mlflow
    error: str = ""

    @property
    def done(self) -> bool:
        return self.status == "done"


@dataclass
class Setup:
    """Cells that are the same experiment on different seeds."""

    results: list[CellResult] = field(default_factory=list)

    @property
    def cell(self) -> Cell:
        return self.results[0].cell

    @property
    def method(self) -> Method:
        return method_of(self.cell)

    @property
    def done(self) -> list[CellResult]:
        return [r for r in self.results if r.done]

    def test_acc_by_seed(self) -> dict[int, float]:
        """The finished seeds' test accuracies, for differences paired by seed."""
        return {r.cell.seed: r.record.metrics.test_acc for r in self.done}

    @property
    def status(self) -> str:
        """`done 2/3, 1 pending`; `missing (pending)` when nothing finished."""
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        done = counts.pop("done", 0)
        rest = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        if not done:
            failed = next((r.error for r in self.results if r.status == "failed"), "")
            return f"missing ({rest})" + (f": {failed}" if failed else "")
        return f"done {done}/{len(self.results)}" + (f", {rest}" if rest else "")


def setup_key(cell: Cell) -> str:
    return canonical_json({k: v for k, v in cell.spec.items() if k != "seed"})


def group_setups(results: list[CellResult]) -> list[Setup]:
    """Seeds of one experiment together, in the grid's order."""
    setups: dict[str, Setup] = {}
    for r in results:
        setups.setdefault(setup_key(r.cell), Setup()).results.append(r)
    return list(setups.values())


# --------------------------------------------------------------------------- the MLflow store


class Store:
    """The grid's MLflow store, read-only: finished runs by cell_id."""

    def __init__(self, uri: str):
        from mlflow.tracking import MlflowClient

        self.uri = uri
        try:
            self.client = MlflowClient(tracking_uri=uri)
            self.client.search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - any failure to read is one line, with what to do
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise StoreUnreadable(
                f"MLflow store {uri} cannot be read ({type(exc).__name__}: {first}); give --tracking-uri the "
                "store the grid was run with, or --no-tracking to report from the result records only") from None

    def experiment_id(self, grid_name: str) -> Optional[str]:
        found = self.client.get_experiment_by_name(grid_name)
        return found.experiment_id if found else None

    def finished_runs(self, grid_name: str) -> dict[str, object]:
        """cell_id -> its latest finished run (launch and report runs left out)."""
        experiment = self.experiment_id(grid_name)
        if experiment is None:
            return {}
        runs = self.client.search_runs([experiment], "attributes.status = 'FINISHED'", max_results=50_000,
                                       order_by=["attributes.start_time ASC"])
        return {r.data.tags["cell_id"]: r for r in runs
                if "cell_id" in r.data.tags and RUN_KIND not in r.data.tags}

    def record_of(self, run, cell: Cell) -> CellRecord:
        """A record rebuilt from a run: the figures the trainer logs as metrics, params and tags."""
        metrics, tags = final_figures(run.data.metrics), run.data.tags
        history = self.history_of(run.info.run_id, epochs=cell.spec["hparams"]["epochs"])
        vals = [row.val_acc if row.val_acc is not None else -1.0 for row in history]
        best = vals.index(max(vals)) + 1 if vals else 0
        energy_source = tags.get("energy_source", "unknown")
        return CellRecord.model_validate({
            "cell_id": cell.cell_id, "grid": cell.grid, "name": cell.name, "status": "done", "spec": cell.spec,
            "metrics": {"test_acc": metrics.get("test_acc"), "test_loss": metrics.get("test_loss"),
                        "val_acc": metrics.get("best_val_acc"), "best_epoch": best,
                        **train_figures(run.data.metrics, history[best - 1].train_acc if best else None)},
            "history": history,
            "timing": {k: metrics.get(k) for k in (*PHASES, "total_s")},
            "throughput": {"train_images": _int(metrics.get("train_images"))},
            "parameters": {"trainable": _int(metrics.get("trainable_params"))},
            "energy": ({"joules": metrics["energy_j"], "source": energy_source,
                        "estimate": "estimate" in tags.get("energy_source", "estimate")}
                       if "energy_j" in metrics else None),
            "compute": ({k: metrics.get(k) for k in COMPUTE_FIELDS} if "cpu_s" in metrics else None),
            "environment": {"device_type": tags.get("device_type"), "world_size": _int(tags.get("world_size")),
                            "torch_threads": _int(tags.get("torch_threads"))},
            "mlflow_run_id": run.info.run_id, "mlflow_parent_run_id": tags.get(PARENT_RUN),
        })

    def history_of(self, run_id: str, epochs: int) -> list[HistoryRow]:
        """The run's per-epoch metric histories as history rows, epochs 1..`epochs` (prefixed names, or the bare
        ones of a store written before the prefixes)."""
        from bench.track_names import epoch_name

        steps: dict[int, dict] = {}
        for key in HistoryRow.metric_names():
            points = self.client.get_metric_history(run_id, epoch_name(key)) or \
                self.client.get_metric_history(run_id, key)
            for m in points:
                steps.setdefault(m.step, {"epoch": m.step})[key] = m.value
        return [HistoryRow.model_validate(steps[s]) for s in sorted(steps) if 1 <= s <= epochs]


def train_figures(logged: dict, running: Optional[float]) -> dict:
    """A rebuilt record's train accuracy: the selected weights' (final/train_acc) beside the selected epoch's running
    mean; a store written before the trainer logged the former keeps the running mean as train_acc, as its
    result.json did. Read by the prefixed name only: a store from before the prefixes holds the epochs' bare
    `train_acc`, which is the running mean."""
    from bench.track_names import final_name

    selected = logged.get(final_name("train_acc"))
    if selected is None:
        return {"train_acc": running}
    return {"train_acc": selected, "train_acc_running": running}


def final_figures(metrics: dict) -> dict:
    """A run's final metrics by their bare names (`test_acc`, `total_s`), whether the store holds them prefixed
    (`final/test_acc`, `time/total_s`) or, written before the prefixes, bare."""
    from bench.track_names import metric_of

    names = {k.split("/", 1)[-1] for k in metrics} | {"energy_j"}
    return {n: metric_of(metrics, n) for n in names if metric_of(metrics, n) is not None}


def _int(value) -> Optional[int]:
    return int(float(value)) if value not in (None, "") else None


def open_store(uri: Optional[str], explicit: bool) -> Optional[Store]:
    """The store to read, or None: tracking off, or the default sqlite file was never written (a results
    folder run with --no-tracking, or nothing run yet). A store named on purpose must be readable."""
    if uri is None:
        return None
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        if explicit:
            raise StoreUnreadable(f"MLflow store {uri}: no such file; give --tracking-uri the store the grid was "
                                  "run with, or --no-tracking to report from the result records only")
        return None
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a server that is down: one line, not minutes
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    return Store(uri)


# --------------------------------------------------------------------------- loading


def load_results(grid: Grid, cells: list[Cell], results_root: Path, store: Optional[Store]) -> list[CellResult]:
    """Every cell of the grid with its status: a record on disk first, else its finished MLflow run."""
    results, absent = [], []
    for cell in cells:
        record = read_record(cell_dir(results_root, grid.name, cell.cell_id))
        if record and record.done:
            results.append(CellResult(cell, "done", record, "record"))
        elif record and record.failed:
            results.append(CellResult(cell, "failed", error=record.error or ""))
            absent.append(results[-1])
        else:
            results.append(CellResult(cell, "pending"))
            absent.append(results[-1])
    runs: Mapping[str, object] = store.finished_runs(grid.name) if (store is not None and absent) else {}
    for result in absent:
        run = runs.get(result.cell.cell_id)
        if run is not None:
            result.status, result.source, result.error = "done", "mlflow", ""
            result.record = store.record_of(run, result.cell)
    return results
