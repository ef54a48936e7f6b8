"""Kills of a running launch, injected with real signals into real `reprogbench run` subprocesses (issue 19.2,
19.3, 21.2): pool workers die with their launcher, one launch trains a cell at a time, and `ls` / `status` tell
a cell in training from one whose process is gone."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from cli_helper import cli, cli_popen

from bench import checkpoint
from bench.files import cell_dir
from bench.grid import load_grid

pytestmark = pytest.mark.slow

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # one torch thread a process: tiny cells, shared cores


def grid_file(tmp_path: Path, name: str, epochs: int, seeds: list[int]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""
name: {name}
originals:
  - {{backbone: test_tinycnn, methods: [scratch]}}
tasks: [digits]
methods: [{{name: scratch}}]
hparams: {{batch_size: 32, epochs: {epochs}}}
split: {{max_train: 256}}
seeds: {seeds}
""")
    return path


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        time.sleep(0.05)


def checkpointed(results: Path, grid: str, cells) -> bool:
    return all((cell_dir(results, grid, c.cell_id) / checkpoint.LATEST).is_file() for c in cells)


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def test_kill_9_of_the_launcher_kills_its_workers(tmp_path):
    path = grid_file(tmp_path, "orphans", epochs=200, seeds=[0, 1])
    cells = load_grid(path).cells
    results = tmp_path / "results"
    proc = cli_popen("run", path, "--results", results, "--workers", "2", "--pack", "1", "--no-tracking", env=ENV,
                     start_new_session=True)
    descendants: list[int] = []
    try:
        wait_for(lambda: checkpointed(results, "orphans", cells), proc, "a checkpoint of both cells")
        descendants = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(descendants) >= 2, descendants  # the two workers (and multiprocessing's resource tracker)
        proc.kill()  # SIGKILL of the launcher alone, as `kill -9 PID` does: its workers get no signal from anyone
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while alive(descendants) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = alive(descendants)
        print(f"FIGURE orphans: {len(descendants)} descendant(s) of the killed launcher, {len(survivors)} alive after")
        assert survivors == [], f"processes of the killed launcher still running: {survivors}"
    finally:
        proc.kill()
        for pid in alive(descendants):  # on a failure: the survivors this test started, by pid
            os.kill(pid, signal.SIGKILL)
