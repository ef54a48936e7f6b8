"""kill -9 at random moments (issue 19, "Done when"): a grid run again and again under `run --workers 1|2`, its
launcher killed with SIGKILL after a random delay each time, then run to the end; prints the counts.

    .venv/bin/python tests/kill_campaign.py --kills 20 --seed 0 --folder /tmp/kill_campaign

Checked after every kill: no process the killed launcher started outlives it by more than 5 s. Checked at the
end: every cell is done, each cell has exactly one MLflow run (by its cell_id tag), no launch run is left
RUNNING, and no process of the campaign is left. Not a test (it takes minutes); RELIABILITY.md quotes its output.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil

from bench.track_runs import RUN_KIND

REPO = Path(__file__).resolve().parent.parent
GRID = """
name: kill_campaign
originals: [{backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 2}}]
tasks: [digits, squares]
methods: [{name: ar, mask: ones, lam: [0.0, 1.0e-3]}, {name: linear_probe}, {name: scratch}]
hparams: {epochs: 4, batch_size: 64}
seeds: [0, 1]
"""


def command(grid: Path, results: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "launch.cli", "run", str(grid), "--results", str(results), "--workers",
            str(workers), "--pack", "1"]


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def training(results: Path) -> bool:
    """A cell is being trained: its lock is there (a worker's or the launcher's own)."""
    return any(results.glob("kill_campaign/*/train.lock"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/kill_campaign"))
    parser.add_argument("--max-delay", type=float, default=25.0,
                        help="seconds to a kill, drawn from U(0, this)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shutil.rmtree(args.folder, ignore_errors=True)
    args.folder.mkdir(parents=True)
    grid, results = args.folder / "kill_campaign.yaml", args.folder / "results"
    grid.write_text(GRID)
    counts: Counter = Counter()
    for k in range(1, args.kills + 1):
        workers = rng.choice([1, 2])
        delay = rng.uniform(0.0, args.max_delay)
        launcher = subprocess.Popen(command(grid, results, workers), cwd=REPO, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        seen: dict[int, psutil.Process] = {}
        # the odd kills count their delay from the launch (they land in start-up: imports, MLflow's parent run,
        # completing earlier runs), the even ones from the first cell's lock (training, epoch logging, records)
        if k % 2 == 0:  # every other kill counts its delay from the first cell lock: a kill during training
            marker = time.monotonic() + 120
            while launcher.poll() is None and time.monotonic() < marker and not training(results):
                time.sleep(0.1)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and launcher.poll() is None:
            seen.update({p.pid: p for p in descendants(launcher.pid)})  # what it started, before it dies
            time.sleep(0.1)
        if launcher.poll() is not None:
            counts["finished before the kill"] += 1
            print(f"kill {k:2d}: workers {workers}, the run finished within {delay:.1f} s", flush=True)
            continue
        seen.update({p.pid: p for p in descendants(launcher.pid)})
        launcher.kill()
        launcher.wait()
        counts["kills"] += 1
        counts[f"kills with --workers {workers}"] += 1
        time.sleep(5)
        left = alive(list(seen.values()))
        counts["processes alive 5 s after a kill"] += len(left)
        for p in left:
            p.kill()
        done = sum(1 for f in results.glob("kill_campaign/*/result.json")
                   if json.loads(f.read_text()).get("status") == "done")
        print(f"kill {k:2d}: workers {workers}, after {delay:4.1f} s, {len(seen)} descendant(s), {len(left)} alive "
              f"5 s later, {done} cell(s) done so far", flush=True)
    final = subprocess.run(command(grid, results, 2), cwd=REPO, capture_output=True, text=True)
    status = subprocess.run([sys.executable, "-m", "launch.cli", "status", str(grid), "--results", str(results)],
                            cwd=REPO, capture_output=True, text=True)
    print(status.stdout.strip().splitlines()[-1])

    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("kill_campaign")
    runs = client.search_runs([experiment.experiment_id], max_results=10_000)
    cell_runs = Counter(r.data.tags["cell_id"] for r in runs
                        if "cell_id" in r.data.tags and RUN_KIND not in r.data.tags)
    launches = [r for r in runs if r.data.tags.get(RUN_KIND) == "grid_launch"]
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}  # this script and what started it
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if p.pid not in mine and str(results) in " ".join(p.info["cmdline"] or [])]
    print(json.dumps({
        **counts, "final run exit": final.returncode,
        "cells": len(cell_runs), "cells with more than one MLflow run": sum(1 for n in cell_runs.values() if n > 1),
        "launch runs": len(launches), "launch runs left RUNNING": sum(r.info.status == "RUNNING" for r in launches),
        "launch runs closed KILLED": sum(r.info.status == "KILLED" for r in launches),
        "campaign processes left": len(leftovers),
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
