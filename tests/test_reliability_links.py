"""Nothing written outside the results folder (issue 19.1): links planted at every name the suite writes in a
cell's folder are replaced, never written through, and a grid's or cell's folder that is a link is refused in one
line before anything runs. Real runs through the CLI, with MLflow tracking (a sqlite store in the results)."""
from __future__ import annotations

import os

from cli_helper import cli

GRID = """
name: links
originals: [{backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 1}}]
tasks: [digits]
methods:
  - {name: ar, mask: ones, hparams: {lr: 0.05}}
  - {name: scratch, hparams: {"optimizer, lr": [[adam, 0.001], [sgd, 1.0e+12]]}}
hparams: {epochs: 2, batch_size: 64}
"""
# every file the suite writes in a cell's folder (a pretrain cell's model, a failed cell's traceback, ...)
NAMES = ("result.json", "checkpoint.pt", "checkpoint.pt.sha256", "checkpoint.prev.pt", "checkpoint.prev.pt.sha256",
         "model.pt", "model.pt.sha256", "error.txt", "mlflow_run_id", "live.json")


def snapshot(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_links_planted_at_every_name_are_replaced_never_written_through(tmp_path):
    grid, results, outside = tmp_path / "links.yaml", tmp_path / "results", tmp_path / "outside"
    grid.write_text(GRID)
    outside.mkdir()
    ids = cli("ls", grid, "--ids").stdout.split()
    assert len(ids) == 4
    for cell_id in ids:
        folder = results / "links" / cell_id
        folder.mkdir(parents=True)
        for i, name in enumerate(NAMES):
            target = outside / f"{cell_id}-{name}"
            if i % 2 == 0:  # half point at a file of the user's, half dangle (a write through it would create it)
                target.write_text("the user's file")
            os.symlink(target, folder / name)
    before = snapshot(outside)

    run = cli("run", grid, "--results", results)
    assert run.returncode == 1, run.stderr  # the sgd lr=1e12 cell diverges (error.txt); the others finish
    assert snapshot(outside) == before  # no target changed, no dangling target created
    written = [p for cell_id in ids for p in (results / "links" / cell_id).iterdir() if p.name in NAMES]
    replaced = [p for p in written if not p.is_symlink()]
    # what each cell wrote replaced the link at its name: result.json everywhere, the run id of each tracked
    # cell, the pretrain cell's model, the failed cell's traceback
    assert {p.name for p in replaced} >= {"result.json", "mlflow_run_id", "model.pt", "error.txt", "checkpoint.pt"}
    assert all(p.stat().st_size > 0 for p in replaced)
    status = cli("status", grid, "--results", results)
    assert "3 done" in status.stdout and "1 failed" in status.stdout, status.stdout


def test_a_grid_or_cell_folder_that_is_a_link_is_refused_in_one_line(tmp_path):
    grid, outside = tmp_path / "links.yaml", tmp_path / "outside"
    grid.write_text(GRID)
    outside.mkdir()
    ids = cli("ls", grid, "--ids").stdout.split()
    for case, results in (("grid", tmp_path / "r1"), ("cell", tmp_path / "r2")):
        linked = results / "links" if case == "grid" else results / "links" / ids[-1]
        linked.parent.mkdir(parents=True)
        os.symlink(outside, linked)
        run = cli("run", grid, "--results", results)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1, run.stderr
        assert f"{linked} is a symbolic link" in lines[0] and "give --results the folder it points to" in lines[0]
        assert list(outside.iterdir()) == []
    # the folder a user's --results itself links to is fine: the root may be a link (a scratch disk)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    os.symlink(scratch, tmp_path / "r3")
    run = cli("run", grid, "--results", tmp_path / "r3", "--filter", "method=ar", "--no-tracking")
    assert run.returncode == 0, run.stderr
    assert (scratch / "links").is_dir()
