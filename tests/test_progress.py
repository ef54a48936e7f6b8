"""Progress through real runs of a tiny grid via the CLI: the work is images x epochs per cell, known before any
cell starts, and the lines a non-terminal gets (one per cell step) carry the work done and an ETA."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helper import cli

from bench.grid import load_grid

pytestmark = pytest.mark.slow

MAX_TRAIN = 96
TINY = f"""
name: tiny_progress
originals:
  - {{backbone: test_tinycnn, trained_on: digits, hparams: {{epochs: 2}}}}
tasks: [digits_01]
methods:
  - {{name: linear_probe}}
  - {{name: scratch, hparams: {{epochs: 3}}}}
hparams: {{batch_size: 32, epochs: 1}}
split: {{seed: 0, val_fraction: 0.1, test_fraction: 0.2, max_train: {MAX_TRAIN}}}
seeds: [0]
"""
LINE = re.compile(r"^progress tiny_progress: (start|end)\s+(\w+) .* work (\d+)/(\d+) img x epoch .* ETA (\S+)$")


def run_grid(tmp_path: Path, *args):
    grid_path = tmp_path / "tiny_progress.yaml"
    grid_path.write_text(TINY)
    proc = cli("run", grid_path, "--results", tmp_path / "results", "--no-tracking", *args)
    assert proc.returncode == 0, proc.stderr
    steps = [LINE.match(line) for line in proc.stdout.splitlines() if line.startswith("progress ")]
    assert all(steps), proc.stdout
    return load_grid(grid_path), steps


def test_work_is_images_times_epochs_and_every_cell_step_has_a_line(tmp_path):
    grid, steps = run_grid(tmp_path)
    cells = [c for c in grid.cells if c.skip_reason is None]
    expected = sum(MAX_TRAIN * c.spec["hparams"]["epochs"] for c in cells)
    assert expected == MAX_TRAIN * (2 + 1 + 3)  # pretrain, linear_probe, scratch each count their own epochs
    assert {int(m.group(4)) for m in steps} == {expected}
    ends = [m for m in steps if m.group(1) == "end"]
    assert sorted(m.group(2) for m in ends) == sorted(c.cell_id for c in cells)
    assert len(steps) == 2 * len(cells)
    done = [int(m.group(3)) for m in ends]
    assert done == sorted(done) and done[-1] == expected and len(set(done)) == len(done)
    assert steps[0].group(5) == "?"  # nothing done yet: no pace to go on
    after_first = [m.group(5) for m in steps[steps.index(ends[0]) + 1:]] + [ends[0].group(5)]
    assert all(re.fullmatch(r"(\d+h)?\d+m\d\ds", eta) for eta in after_first)


def test_workers_show_progress_lines_too(tmp_path):
    grid, steps = run_grid(tmp_path, "--workers", "2")
    ends = [m for m in steps if m.group(1) == "end"]
    assert len(ends) == len([c for c in grid.cells if c.skip_reason is None])
    assert int(ends[-1].group(3)) == int(ends[-1].group(4))


def test_a_line_inside_the_epoch_when_the_interval_is_tiny(tmp_path):
    grid_path = tmp_path / "tiny_progress.yaml"
    grid_path.write_text(TINY)
    proc = cli("run", grid_path, "--results", tmp_path / "results", "--no-tracking", "--filter", "method=scratch",
               env={"REPROGBENCH_PROGRESS_EVERY_S": "0"})
    assert proc.returncode == 0, proc.stderr
    batches = -(-MAX_TRAIN // 32)
    for epoch in (1, 2, 3):
        assert f"epoch {epoch}  batch 1/{batches}" in proc.stdout, proc.stdout


def test_a_terminal_gets_a_bar_over_the_batches(tmp_path):
    """stdout and stderr a real pseudo-terminal: tqdm's bar over each epoch's batches is drawn (and the grid's)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    from cli_helper import REPO, cli_argv

    grid_path = tmp_path / "tiny_progress.yaml"
    grid_path.write_text(TINY)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))  # a new pty is 0 columns wide
    proc = subprocess.Popen(cli_argv("run", grid_path, "--results", tmp_path / "results", "--no-tracking",
                                     "--filter", "method=scratch"),
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=REPO, env=os.environ)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=600) == 0
    os.close(leader)
    shown = b"".join(chunks).decode(errors="replace")
    batches = -(-MAX_TRAIN // 32)
    for epoch in (1, 2, 3):
        assert re.search(rf"epoch {epoch}: +\d+%\|[^|]*\| *\d/{batches} \[", shown), shown[-3000:]
    assert "batch 1/" not in shown  # the bar, not the plain lines


def test_a_bad_progress_interval_is_one_line_and_exit_2(tmp_path):
    grid_path = tmp_path / "tiny_progress.yaml"
    grid_path.write_text(TINY)
    proc = cli("run", grid_path, "--results", tmp_path / "results", "--no-tracking",
               env={"REPROGBENCH_PROGRESS_EVERY_S": "soon"})
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "REPROGBENCH_PROGRESS_EVERY_S='soon'" in line and "unset it" in line
    assert not (tmp_path / "results" / "tiny_progress").exists()  # nothing ran
