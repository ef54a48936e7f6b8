"""Inputs refused before anything is written (issue 19.6), beyond the grid file itself: a results path that is a
file or read-only, a grid whose every cell is skipped, and a sqlite store a full disk left half-created.

The read-only folder and the full disk are real: tmpfs mounts (this suite runs as root, as CI does)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cli_helper import cli

GRID = """
name: inputs
originals: [{backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 1}}]
tasks: [digits]
methods: [{name: scratch}]
hparams: {epochs: 1, batch_size: 64}
"""


def write(tmp_path, text: str = GRID):
    path = tmp_path / "inputs.yaml"
    path.write_text(text)
    return path


def one_line(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reprogbench: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs of `size` (and options) at a fresh folder; unmounted afterwards."""
    mounted = []

    def mount(name: str, options: str):
        point = tmp_path / name
        point.mkdir()
        got = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True,
                             text=True)
        if got.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {got.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_results_path_that_is_a_file_is_one_line(tmp_path):
    grid, afile = write(tmp_path), tmp_path / "afile"
    afile.write_text("not a folder")
    for results in (afile, afile / "below"):
        line = one_line(cli("run", grid, "--results", results, "--no-tracking"))
        assert f"{afile} is a file, not a folder" in line
    assert afile.read_text() == "not a folder"


def test_a_read_only_results_folder_is_one_line(tmp_path, tmpfs):
    grid, frozen = write(tmp_path), tmpfs("frozen", "ro,size=1m")
    line = one_line(cli("run", grid, "--results", frozen / "results"))
    assert f"{frozen} is read-only" in line
    cell_id = cli("ls", grid, "--ids").stdout.split()[0]
    assert f"{frozen} is read-only" in one_line(cli("cell", grid, cell_id, "--results", frozen))


def test_a_grid_whose_every_cell_is_skipped_says_why(tmp_path):
    grid = write(tmp_path, GRID.replace("{name: scratch}", "{name: ar, label_map: semantic}"))
    results = tmp_path / "results"
    line = one_line(cli("run", grid, "--results", results, "--no-tracking"))
    assert "every selected cell of inputs is skipped" in line and "label_map: semantic needs a backbone" in line
    assert not results.exists()
    listed = cli("ls", grid)  # ls still lists them, with the reason
    assert listed.returncode == 0 and "skipped" in listed.stdout


def test_a_store_a_full_disk_left_half_created_is_named_with_what_to_delete(tmp_path, tmpfs):
    small = tmpfs("small", "size=160k")  # MLflow's tables need more: its first migration stops half-way
    store = f"sqlite:///{small}/mlflow.db"
    code = (f"import mlflow\ntry:\n    mlflow.MlflowClient({store!r}).search_experiments()\nexcept Exception as e:\n"
            "    print('failed:', 'full' in str(e))\n")  # MLflow creates its tables on the first open
    assert "failed: True" in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)  # space is back
    results = tmp_path / "results"
    run = cli("run", write(tmp_path), "--results", results, "--tracking-uri", store)
    assert run.returncode == 0, run.stderr  # the cell runs and its record is kept
    said = run.stdout + run.stderr
    assert f"the store {small}/mlflow.db was left half-created" in said and "delete it" in said
    assert "done" in cli("ls", write(tmp_path), "--results", results).stdout


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to train with two thread counts")
def test_a_cell_resumed_with_another_thread_count_says_so(tmp_path):
    """Issue 19.7: torch sums in another order with another thread count, so a cell resumed under another
    `--workers` (or allocation) would mix figures silently; the resume says so, and the record holds the count."""
    grid, results = write(tmp_path, GRID.replace("epochs: 1, batch_size", "epochs: 2, batch_size")), tmp_path / "r"
    first = cli("run", grid, "--results", results, "--no-tracking", env={"OMP_NUM_THREADS": "1"})
    assert first.returncode == 0, first.stderr
    (record_file,) = [p for p in results.glob("inputs/*/result.json") if "scratch" in p.read_text()]
    assert json.loads(record_file.read_text())["environment"]["torch_threads"] == 1
    record_file.unlink()  # as if the launch had died after the last checkpoint
    again = cli("run", grid, "--results", results, "--no-tracking")  # 2 threads: the allocation's
    said = again.stdout + again.stderr
    assert again.returncode == 0 and "resuming" in said
    assert "with 1 torch thread(s) and goes on with 2" in said
    assert json.loads(record_file.read_text())["environment"]["torch_threads"] == 2
    # resumed with the count its checkpoint was made with: nothing to say
    record_file.unlink()
    third = cli("run", grid, "--results", results, "--no-tracking", env={"OMP_NUM_THREADS": "1"})
    assert "resuming" in third.stdout + third.stderr and "goes on with" not in third.stdout + third.stderr
