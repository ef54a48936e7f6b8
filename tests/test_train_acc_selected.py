"""The record's train accuracy is the thesis's: the weights selected on validation, evaluated once on the train
split in eval mode, not the running mean over an epoch's batches while the weights still moved (kept as
`train_acc_running`). Older records, whose train_acc is that running mean, still read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_stream import register, write_image_folder

from bench.grid import load_grid
from bench.record import parse_record
from bench.train import TrainContext, run_cell
from bench.train.evaluation import evaluate
from bench.train.events import Observers
from bench.train.setup import load_splits, set_up

# a scratch network with BatchNorm: eval mode (its running statistics, the selected weights) and the running
# in-epoch mean (batch statistics, weights changing) give different train figures
GRID = """\
name: trainacc
originals: [{backbone: test_tinycnn, methods: [scratch]}]
tasks: [test_image_folder]
methods: [{name: scratch}]
hparams: {epochs: 3, batch_size: 8, lr: 0.01}
seeds: [0]
"""


@pytest.fixture
def done_cell(tmp_path):
    register()
    data = tmp_path / "data"
    write_image_folder(data, per_class=24)
    (tmp_path / "g.yaml").write_text(GRID)
    [cell] = load_grid(tmp_path / "g.yaml").cells
    context = TrainContext(data_root=data)
    record = run_cell(cell, tmp_path / "cell", context)
    return cell, tmp_path / "cell", context, record


def test_train_acc_is_the_selected_weights_evaluated_on_the_train_split(done_cell):
    cell, directory, context, record = done_cell
    best = record.metrics.best_epoch
    assert record.metrics.train_acc_running == record.history[best - 1].train_acc  # the running mean, by name
    # a separate evaluation: the cell set up again from its last checkpoint, its selected weights restored
    run = set_up([cell], [directory], context)
    try:
        load_splits(run, False, Observers([], True), "auto")
        [member] = run.members
        assert member.best["epoch"] == best
        member.learned.load_state_dict(member.best["learned"])
        [train] = evaluate(run.pack, run.models, run.splits["train"], run.dist)
        [val] = evaluate(run.pack, run.models, run.splits["val"], run.dist)
    finally:
        run.meter.close()
    assert record.metrics.train_acc == pytest.approx(train.acc)
    assert record.metrics.val_acc == pytest.approx(val.acc)  # the same weights the validation selected
    assert 0 <= record.metrics.train_acc <= 100
    # and the MLflow figures carry it under final/train_acc
    assert record.final_metrics()["train_acc"] == record.metrics.train_acc


def test_an_older_record_keeps_its_running_mean_as_train_acc_and_logs_no_final_train_acc():
    # a record as the trainer wrote it before the selected weights were evaluated on train
    old = json.loads((Path(__file__).parent / "golden" / "records" / "done_ar.json").read_text())
    assert "train_acc_running" not in old["metrics"]
    record = parse_record(old)
    assert record.metrics.train_acc == old["metrics"]["train_acc"] and record.metrics.train_acc_running is None
    assert "train_acc" not in record.final_metrics()
    assert record.to_json()["metrics"] == old["metrics"]  # written back unchanged


def test_a_rebuilt_record_reads_the_selected_figure_only_under_its_prefixed_name():
    from analysis.results import train_figures

    assert train_figures({"final/train_acc": 70.0, "epoch/train_acc": 65.0}, 65.0) == {
        "train_acc": 70.0, "train_acc_running": 65.0}
    # a store from before the prefixes: its bare train_acc is the epochs' running mean, not the selected figure
    assert train_figures({"train_acc": 65.0}, 64.0) == {"train_acc": 64.0}
