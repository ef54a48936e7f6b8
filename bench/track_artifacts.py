"""What a finished cell's MLflow run shows beside its metrics: its `result.json` and learning curve as artifacts,
a one-line description (the UI's Description field) and its new task as a dataset input (the Dataset column)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

from bench.files import RESULT
from bench.record import CellRecord

NOTE = "mlflow.note.content"  # the tag the MLflow UI shows as a run's description
CURVE = "learning_curve.png"


def description(record: CellRecord) -> str:
    """One line: what the cell is and what it reached, e.g. `linear_probe of test_tinycnn (trained on digits) on
    digits_01, seed 0: test 97.50%, val 98.00% at epoch 2 of 3, 12.3 s`."""
    spec = record.spec
    original = spec.get("original") or {}
    trained = f" (trained on {original['trained_on']})" if original.get("trained_on") else ""
    line = f"{spec['method']['name']} of {spec['backbone']['name']}{trained} on {spec['task']}, seed {spec['seed']}"
    if not record.done:
        return f"{line}: {record.status}"
    m, epochs = record.metrics, spec["hparams"]["epochs"]
    test = f"test {100 * m.test_acc:.2f}%, " if m.test_acc is not None else ""
    return (f"{line}: {test}val {100 * (m.val_acc or 0):.2f}% at epoch {m.best_epoch} of {epochs}, "
            f"{record.timing.total_s:.1f} s")


def plot_learning_curve(record: CellRecord, path: Path) -> None:
    """Accuracy and loss per epoch, train beside validation (the selected epoch marked)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a cell may run on a node without one
    import matplotlib.pyplot as plt

    epochs = [row.epoch for row in record.history]
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=150, constrained_layout=True)
    for ax, key, title in ((acc, "acc", "accuracy"), (loss, "loss", "loss")):
        for split in ("train", "val"):
            ax.plot(epochs, [getattr(row, f"{split}_{key}") for row in record.history], marker="o", label=split)
        if record.metrics and record.metrics.best_epoch:
            ax.axvline(record.metrics.best_epoch, color="0.6", linestyle=":", label="selected")
        ax.set(xlabel="epoch", title=title)
        ax.legend(fontsize=8)
    fig.suptitle(record.name or record.cell_id, fontsize=9)
    fig.savefig(path)
    plt.close(fig)


def dataset_input(record: CellRecord):
    """The new task as an MLflow dataset: its name, the split's fingerprint as digest (same digest, same samples
    in each split), where it comes from, and the split sizes as its profile."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    split = record.split or {}
    dataset = Dataset(name=record.spec["task"], digest=str(split.get("fingerprint") or "unknown")[:36],
                      source_type="reprogbench", source=json.dumps({"task": record.spec["task"],
                                                                    "source": split.get("source")}),
                      profile=json.dumps({k: split.get(k) for k in ("sizes", "seed", "val_fraction",
                                                                    "test_fraction", "max_train")}))
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "train")])


def log_cell_extras(tracker, run_id: Optional[str], directory: Path, record: CellRecord) -> None:
    """The artifacts, description and dataset of a done cell's run (each call through the Tracker: offline is
    said once and costs nothing more)."""
    if run_id is None or not record.done:
        return
    tracker.set_tags(run_id, {NOTE: description(record)})
    tracker.call("log dataset", tracker.client.log_inputs, run_id, [dataset_input(record)])
    tracker.call("log artifact", tracker.client.log_artifact, run_id, str(Path(directory) / RESULT))
    with tempfile.TemporaryDirectory() as folder:  # the plot lives in MLflow only; the record is the truth
        curve = Path(folder) / CURVE
        plot_learning_curve(record, curve)
        tracker.call("log artifact", tracker.client.log_artifact, run_id, str(curve))
