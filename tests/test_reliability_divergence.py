"""Divergence, injected by an absurd learning rate in a real grid run through `reprogbench run`: each diverging cell
stops at once with one line, is recorded failed (record, MLflow run, `reprogbench status`), and every other cell,
packed with it or beside it in a worker pool, finishes."""
from __future__ import annotations

import re

import pytest
from cli_helper import cli

from bench.files import MLFLOW_RUN, cell_dir
from bench.grid import load_grid
from bench.record import read_record

pytestmark = pytest.mark.slow

# lam * |W|^2 with SGD at lr 1e30: W overflows after the first step; at lr 0.05 it shrinks, as it should
GRID = """
name: diverge
originals:
  - {backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 1}}
tasks: [digits]
methods:
  - {name: ar, lam: 1.0, hparams: {optimizer: sgd, lr: [0.05, 1.0e30]}}
hparams: {batch_size: 64, epochs: 2}
split: {max_train: 256}
seeds: [0, 1]
"""

LINE = re.compile(r"cell (\w{12}) diverged at epoch (\d+), step (\d+): loss (nan|inf|-inf); try a lower lr")


@pytest.mark.parametrize("args", [["--pack", "8"], ["--pack", "1", "--workers", "2"]], ids=["pack", "pool"])
def test_diverging_cells_fail_alone_with_one_line_and_the_others_finish(tmp_path, args):
    path = tmp_path / "diverge.yaml"
    path.write_text(GRID)
    cells = load_grid(path).cells
    bad = {c.cell_id for c in cells if c.spec["hparams"]["lr"] == 1e30}
    good = {c.cell_id for c in cells} - bad
    assert len(bad) == 2 and len(good) == 3  # two ar cells at lr 0.05 and the pretrain cell
    results = tmp_path / "results"
    proc = cli("run", path, "--results", results, *args, timeout=900)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    summary = [m.groups() for m in LINE.finditer(proc.stderr)]
    assert sorted(g[0] for g in summary) == sorted(bad)  # one line each in the summary, no more
    assert all(int(epoch) == 1 for _, epoch, _, _ in summary)  # it stopped in its first epoch, at once

    for cell_id in bad:
        record = read_record(cell_dir(results, "diverge", cell_id))
        assert record.failed and LINE.search(record.error).group(1) == cell_id
    for cell_id in good:
        record = read_record(cell_dir(results, "diverge", cell_id))
        assert record.done, record.error
        assert [row.epoch for row in record.history] == list(range(1, record.spec["hparams"]["epochs"] + 1))

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("diverge")
    runs = client.search_runs([experiment.experiment_id], "tags.cell_id != ''")
    assert sorted(r.data.tags["cell_id"] for r in runs) == sorted(bad | good)  # one run per cell: no duplicate
    status = {r.data.tags["cell_id"]: r.info.status for r in runs}
    assert {status[c] for c in bad} == {"FAILED"} and {status[c] for c in good} == {"FINISHED"}
    for cell_id in bad | good:
        assert (cell_dir(results, "diverge", cell_id) / MLFLOW_RUN).read_text() in {r.info.run_id for r in runs}

    print(f"FIGURE divergence {args}: cells {len(bad | good)}, injected {len(bad)}, stopped at "
          f"{sorted((e, st, loss) for _, e, st, loss in summary)}, failed records {len(bad)}, done {len(good)}, "
          f"MLflow runs {len(runs)} for {len(bad | good)} cells")
    shown = cli("status", path, "--results", results, timeout=300)
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    rows = {line.split()[0]: line for line in shown.stdout.splitlines() if line[:12] in bad | good}
    assert all(rows[c].split()[1] == "failed" and "diverged at epoch 1" in rows[c] for c in bad)
    assert all(rows[c].split()[1] == "done" for c in good)
