"""The typed cell record: records written before it existed still load, attribute by attribute, and are written
back unchanged; the records it writes have the shape readers of `result.json` have always seen."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.files import RESULT, read_json
from bench.grid import load_grid
from bench.record import (
    PHASES,
    CellRecord,
    HistoryRow,
    cell_status,
    failed_record,
    parse_record,
    read_record,
    write_record,
)

GOLDEN = Path(__file__).parent / "golden" / "records"
RECORDS = sorted(p.name for p in GOLDEN.glob("*.json") if p.name != "final_metrics.json")


def golden(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


def on_disk(name: str, path: str):
    """The value at a dotted path ("metrics.test_acc") of a golden record's JSON, as the old code wrote it."""
    value = golden(name)
    for key in path.split("."):
        value = value[key]
    return value


@pytest.mark.parametrize("name", RECORDS)
def test_an_old_record_loads_and_is_written_back_unchanged(tmp_path, name):
    shutil.copy(GOLDEN / name, tmp_path / RESULT)
    record = read_record(tmp_path)
    assert record is not None and record.cell_id == golden(name)["cell_id"]
    assert record.to_json() == golden(name)
    write_record(tmp_path, record)
    assert read_json(tmp_path / RESULT) == golden(name)
    assert cell_status(tmp_path) == on_disk(name, "status")


@pytest.mark.parametrize("name", sorted(golden("final_metrics.json")))
def test_final_metrics_are_those_the_old_code_logged(name):
    assert parse_record(golden(name)).final_metrics() == golden("final_metrics.json")[name]


def test_a_done_record_reads_by_attribute():
    name, record = "done_ar.json", parse_record(golden("done_ar.json"))
    assert record.done and not record.failed
    assert record.metrics.test_acc == on_disk(name, "metrics.test_acc")
    assert record.metrics.best_epoch == record.best_row.epoch == on_disk(name, "metrics.best_epoch")
    assert [row.model_dump() for row in record.history] == on_disk(name, "history")
    assert {k: getattr(record.timing, k) for k in (*PHASES, "total_s")} == on_disk(name, "timing")
    assert record.energy.joules == on_disk(name, "energy.joules") and record.energy.source == "estimate"
    assert record.energy.watts == on_disk(name, "energy.watts")  # what the meter said of itself
    assert record.tracking.synced and record.tracking.run_id == on_disk(name, "tracking.run_id")
    assert record.environment.world_size == 1 and record.parameters.trainable == on_disk(name, "parameters.trainable")


def test_a_joint_tasks_parts_and_a_black_boxs_queries():
    joint = parse_record(golden("done_joint.json"))
    parts = set(joint.metrics.per_task)
    assert parts == {"digits_0to4", "squares_1to5"}
    part = joint.metrics.per_task["digits_0to4"]
    assert part.test_acc == on_disk("done_joint.json", "metrics.per_task.digits_0to4.test_acc")
    for row, written in zip(joint.history, on_disk("done_joint.json", "history"), strict=True):
        assert row.val_acc_by_part == {p: written.get(f"val_acc.{p}") for p in parts}
        assert set(row.metrics()) == {*HistoryRow.metric_names(), *(f"val_acc.{p}" for p in parts)}
        assert row.model_dump() == written  # the parts flattened again, as on disk
    assert parse_record(golden("done_blackbox.json")).metrics.queries == on_disk("done_blackbox.json",
                                                                                  "metrics.queries")


def test_a_sweep_trial_has_no_test_figures():
    record = parse_record(golden("done_sweep_trial.json"))
    assert record.done and record.metrics.test_acc is None and record.metrics.test_loss is None
    assert record.final_metrics()["test_acc"] is None


@pytest.mark.parametrize("name", ["failed_local.json", "failed_sweep_trial.json"])
def test_an_old_failed_record_names_its_cell_and_error(name):
    record = parse_record(golden(name))
    assert record.failed and record.error == on_disk(name, "error")
    assert record.metrics is None and record.history == [] and record.timing is None


def test_failed_record_writes_what_the_launcher_always_wrote():
    raw = golden("failed_local.json")
    cell = load_grid("demo").by_id()[raw.pop("cell_id")]
    assert failed_record(cell, raw["error"]).to_json() == {"cell_id": cell.cell_id, **raw}


def test_the_history_keys_are_the_trainers_metric_histories():
    assert HistoryRow.metric_names() == ("train_loss", "train_acc", "val_loss", "val_acc", "elapsed_s", "energy_j")


@pytest.mark.parametrize("text", ["[]", '{"cell_id": "x"}', '{"cell_id": "x", "status": "running"}', "not json"])
def test_anything_else_reads_as_no_record(tmp_path, text):
    (tmp_path / RESULT).write_text(text)
    assert read_record(tmp_path) is None and cell_status(tmp_path) == "pending"


def test_assigned_parts_are_written(tmp_path):
    record = CellRecord.model_validate(golden("failed_local.json"))
    record.mlflow_run_id = "abc"
    write_record(tmp_path, record)
    assert read_json(tmp_path / RESULT) == {**golden("failed_local.json"), "mlflow_run_id": "abc"}
