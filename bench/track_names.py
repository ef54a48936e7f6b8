"""What a cell's MLflow run is called and how its metrics are named: the names the UI shows and the results URL
filters and sorts on (`launch.mlflow_ui.runs_url`)."""
from __future__ import annotations

TEST_ACC = "test_acc"  # the figure the results table is sorted by
# MLflow's search syntax: a metric whose name is not a plain identifier is quoted with backticks
RESULTS_FILTER = f"metrics.{TEST_ACC} > 0"
RESULTS_ORDER_KEY = f"metrics.`{TEST_ACC}`"


def run_name(cell) -> str:
    """A cell's run name, led by what tells cells apart (the UI cuts long names at the end): the new task, the
    method with its parameters, the original model, the seed, e.g. `digits ar[lam=0.01] fashion_mnist/smallcnn
    s0`. A cell that trains an original: `fashion_mnist: scratch smallcnn (original) s0`."""
    if cell.makes_original:
        return f"{cell.original_label or cell.task}: {cell.method_label} {cell.backbone} (original) s{cell.seed}"
    original = cell.backbone if cell.spec["original"] is None else \
        f"{cell.original_label or cell.trained_on}/{cell.backbone}"
    return f"{cell.task} {cell.method_label} {original} s{cell.seed}"
