"""Records of the wrong shape (issue 19, item 5): a `result.json` that is not a cell record is reported in one line
naming the file, the cell counts as not finished, `ls`, `report`, `sync` and `run` carry on, and `run` trains the
cell again from its checkpoint (not from epoch 0) and writes a real record over the bad one."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

import bench.record
from bench.files import RESULT, cell_dir
from bench.grid import load_grid
from bench.record import read_record
from launch.cli import main

GRID = {
    "name": "shapes",
    "originals": [{"backbone": "test_tinycnn", "trained_on": "digits", "hparams": {"epochs": 1}}],
    "tasks": ["digits_01"],
    "methods": [{"name": "linear_probe"}],
    "hparams": {"batch_size": 64, "epochs": 1},
    "split": {"max_train": 100},
    "seeds": [0],
}

# each was read as a finished cell, or gave a traceback in ls / run / report / sync, before records were validated
BAD = {
    "a_string": '"done"',
    "status_only": '{"status": "done"}',
    "a_list": '[{"status": "done"}]',
    "done_without_parts": None,  # filled in below: the cell's own id and status, nothing else
    "wrong_type": None,  # the real record with test_acc a string
    "not_json": "{\"status\": \"done\"",
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The grid run once, tracked in MLflow (sqlite under the results folder): results to copy per case."""
    folder = tmp_path_factory.mktemp("records")
    grid_path = folder / "shapes.yaml"
    grid_path.write_text(yaml.safe_dump(GRID))
    results = folder / "results"
    assert main(["run", str(grid_path), "--results", str(results)]) == 0
    probe = next(c for c in load_grid(grid_path).cells if c.method == "linear_probe")
    return {"grid": grid_path, "results": results, "cell": probe}


def bad_text(case: str, good: dict, cell_id: str) -> str:
    if case == "done_without_parts":
        return json.dumps({"cell_id": cell_id, "status": "done"})
    if case == "wrong_type":
        return json.dumps({**good, "metrics": {**good["metrics"], "test_acc": "high"}})
    return BAD[case]


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_record_of_the_wrong_shape_is_one_line_and_the_cell_is_not_finished(finished, tmp_path, capsys,
                                                                              monkeypatch, case):
    results = tmp_path / "results"
    shutil.copytree(finished["results"], results)
    cell = finished["cell"]
    record_file = cell_dir(results, "shapes", cell.cell_id) / RESULT
    good = json.loads(record_file.read_text())
    record_file.write_text(bad_text(case, good, cell.cell_id))
    grid = str(finished["grid"])

    for command in (["ls"], ["report", "--format", "md"], ["sync"]):
        monkeypatch.setattr(bench.record, "_REPORTED", set())  # each command is its own process for a user
        code = main([*command[:1], grid, "--results", str(results), *command[1:]])
        captured = capsys.readouterr()
        assert code == 0, (command, captured.err[-2000:])
        assert "Traceback" not in captured.err + captured.out
        warnings = [line for line in captured.err.splitlines() if "not a cell record" in line]
        assert len(warnings) == 1 and str(record_file) in warnings[0], (command, captured.err)
        if command == ["ls"]:
            row = next(line for line in captured.out.splitlines() if line.startswith(cell.cell_id))
            assert row.split()[1] == "pending"
    assert read_record(record_file.parent) is None

    monkeypatch.setattr(bench.record, "_REPORTED", set())
    assert main(["run", grid, "--results", str(results)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "1 cell(s) run, 1 already done" in captured.out, captured.out
    record = read_record(record_file.parent)
    assert record is not None and record.done and record.metrics.test_acc == good["metrics"]["test_acc"]
    assert record.resumed_from_epoch == 1  # its checkpoint (epoch 1 of 1) was used, not thrown away
