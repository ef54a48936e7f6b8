"""kill -9 of a sweep driver at random moments (issue 20.5, "Done when"): `reprogbench sweep` of a tiny grid with
ASHA, its driver killed with SIGKILL again and again, the odd kills right after a trial's stop line, the even ones
after a random delay from the launch; then a run to the end. Prints a line per kill and the counts.

    .venv/bin/python tests/sweep_kill_campaign.py --kills 10 --seed 0 --folder /tmp/sweep_kill_campaign

Checked after every kill: no process of the killed driver's Ray (its descendants, and whatever carries its
`launch.ray_reaper` mark) outlives it by more than 5 s. Checked at the end: no trial whose stop line was printed
was trained again (its `result.json` and `history.json` bytes as when its line first appeared), every trial is
done or stopped, each trial's lines agree with each other and with the summary, and MLflow holds one parent run
of the sweep. `tests/test_sweep_kills.py` runs a short campaign; RELIABILITY.md quotes the 10-kill output.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import psutil

from bench.files import RESULT, read_json
from bench.grid import load_grid
from bench.track import RUN_KIND
from launch.ray_reaper import MARK
from launch.sweep_records import HISTORY_FILE, SUMMARY, TRIALS, sweep_dir

REPO = Path(__file__).resolve().parent.parent
GRID = """
name: sweep_kills
originals: [{backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 2}}]
tasks: [digits_01]
methods:
  - name: ar
    hparams: {lr: 0.05}
    # half the configs cannot learn (lr 1e-6 stays at chance): ASHA stops them, so there are stop lines
    search: {lr: {choice: [1.0e-6, 0.1]}, lam: {loguniform: [1.0e-6, 1.0e-2]}}
hparams: {batch_size: 64, epochs: 4}
"""
# "  trial 2/6 abc_00001 (lr=0.1, lam=...): stopped early after 1 epoch(s), best val 50.00%"
LINE = re.compile(r"^\s*trial \d+/\d+ (\S+) \(.*\): (done|stopped early|failed) after (\d+) epoch\(s\)")
GRACE_S = 5.0  # how long a Ray process may outlive its driver


def command(grid: Path, results: Path, samples: int) -> list[str]:
    return [sys.executable, "-m", "launch.cli", "sweep", str(grid), "--results", str(results), "--samples",
            str(samples), "--scheduler", "asha", "--max-concurrent", "1"]


class Driver:
    """One sweep driver: its stdout read line by line in a thread; what it started, noted while it lives."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     bufsize=1)
        self.mark = f"{self.proc.pid}:{psutil.Process(self.proc.pid).create_time()}"
        self.lines: list[str] = []
        self.new_line = threading.Event()
        self.seen: dict[int, psutil.Process] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self.new_line.set()

    def note(self) -> None:
        try:
            self.seen.update({p.pid: p for p in psutil.Process(self.proc.pid).children(recursive=True)})
        except psutil.Error:
            pass

    def wait_until(self, deadline: float, stop_line_of_new_trial: Optional[set] = None) -> Optional[str]:
        """Until the deadline, the driver's end, or (if given a set of trial ids already seen) a stop line of a
        trial not in it; -> that line."""
        checked = 0
        while time.monotonic() < deadline and self.proc.poll() is None:
            self.note()
            self.new_line.wait(0.1)
            self.new_line.clear()
            for line in self.lines[checked:]:
                match = LINE.match(line)
                if stop_line_of_new_trial is not None and match and match[1] not in stop_line_of_new_trial:
                    return line
            checked = len(self.lines)
        return None

    def ours(self) -> list[psutil.Process]:
        """What is left of this driver's Ray: its descendants seen alive, and anything carrying its mark."""
        left = {p.pid: p for p in self.seen.values() if _alive(p)}
        for process in psutil.process_iter():
            try:
                if process.environ().get(MARK) == self.mark:
                    left[process.pid] = process
            except psutil.Error:
                continue
        return list(left.values())


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def trial_files(folder: Path) -> tuple[Optional[bytes], Optional[bytes]]:
    result, history = folder / RESULT, folder / HISTORY_FILE
    return (result.read_bytes() if result.exists() else None, history.read_bytes() if history.exists() else None)


def campaign(folder: Path, kills: int, seed: int, samples: int = 6, max_delay: float = 40.0,
             log=print) -> dict:
    """Run the campaign in `folder` (emptied first); -> the counts and checks, as printed at the end."""
    rng = random.Random(seed)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    grid, results = folder / "sweep_kills.yaml", folder / "results"
    grid.write_text(GRID)
    cell = next(c for c in load_grid(grid).cells if c.method == "ar")
    trials = sweep_dir(results, cell.grid, cell.cell_id) / TRIALS
    counts: Counter = Counter()
    ended: dict[str, tuple] = {}  # trial id -> its files when its stop line first appeared
    said: dict[str, set] = {}  # trial id -> every (how, epochs) printed of it, over all runs
    slowest_exit_s = 0.0

    def take_lines(driver: Driver) -> None:
        for line in driver.lines:
            if match := LINE.match(line):
                said.setdefault(match[1], set()).add((match[2], int(match[3])))
                ended.setdefault(match[1], trial_files(trials / match[1]))

    for k in range(1, kills + 1):
        after_line = k % 2 == 1
        delay = rng.uniform(0.0, max_delay)
        driver = Driver(command(grid, results, samples))
        if after_line:  # right after the next trial's stop line, whatever its epoch: the kill the issue saw
            line = driver.wait_until(time.monotonic() + 600, set(ended) | _printed(driver))
            moment = f"right after `{line.strip()[:60]}...`" if line else "no new stop line"
        else:
            driver.wait_until(time.monotonic() + delay)
            moment = f"{delay:4.1f} s after the launch"
        driver.note()
        if driver.proc.poll() is not None:
            take_lines(driver)
            counts["runs that ended before their kill"] += 1
            log(f"kill {k:2d}: the sweep ended (exit {driver.proc.returncode}) before its kill ({moment})")
            continue
        driver.proc.kill()
        driver.proc.wait()
        killed_at = time.monotonic()
        counts["kills"] += 1
        counts["kills right after a stop line" if after_line else "kills at a random delay"] += 1
        if after_line and line and "stopped early" in line:
            counts["of which right after a 'stopped early' line"] += 1
        while driver.ours() and time.monotonic() - killed_at < GRACE_S:
            time.sleep(0.1)
        left = driver.ours()
        gone_s = time.monotonic() - killed_at
        slowest_exit_s = max(slowest_exit_s, gone_s if not left else GRACE_S)
        counts["Ray processes alive 5 s after a kill"] += len(left)
        names = sorted({_name(p) for p in left})
        for process in left:  # so that the next kill starts clean
            try:
                process.kill()
            except psutil.Error:
                pass
        take_lines(driver)
        log(f"kill {k:2d}: {moment}; {len(driver.seen)} descendant(s), all gone {gone_s:.1f} s after the kill"
            if not left else f"kill {k:2d}: {moment}; {len(left)} left 5 s after the kill: {', '.join(names)}")
    final = Driver(command(grid, results, samples))
    final.proc.wait()
    time.sleep(0.5)  # the reader thread's last lines
    take_lines(final)
    summary = read_json(sweep_dir(results, cell.grid, cell.cell_id) / SUMMARY) or {}
    retrained = [t for t, files in ended.items() if trial_files(trials / t) != files]
    states = {t["trial_id"]: t for t in summary.get("trials", [])}
    disagree = [t for t, lines in said.items() if len(lines) > 1 or not _agrees(next(iter(lines)), states.get(t))]
    parents = _parent_runs(results, cell.grid)
    return {**counts, "final run exit": final.proc.returncode, "sweep status": summary.get("status"),
            "trials": len(states), "trials done or stopped": sum(_finished(t) for t in states.values()),
            "trials with a stop line": len(ended), "trials trained again after their stop line": len(retrained),
            "trials whose lines disagree with each other or the summary": len(disagree),
            "MLflow parent runs of the sweep": parents, "slowest Ray exit after a kill (s)": round(slowest_exit_s, 1)}


def _printed(driver: Driver) -> set:
    return {m[1] for line in driver.lines if (m := LINE.match(line))}


def _finished(trial: dict) -> bool:
    return trial["state"] == "done" or trial["state"].startswith("stopped at epoch")


def _agrees(line: tuple[str, int], trial: Optional[dict]) -> bool:
    """A stop line against the summary: done is a done record, 'stopped early after k' is k epochs run."""
    if trial is None:
        return False
    how, epochs = line
    if how == "done":
        return trial["state"] == "done"
    if how == "failed":
        return trial["state"] == "failed"
    return trial["state"] == f"stopped at epoch {epochs}" and trial["epochs"] == epochs


def _parent_runs(results: Path, grid: str) -> int:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(grid)
    if experiment is None:
        return 0
    runs = client.search_runs([experiment.experiment_id], max_results=10_000)
    return sum(r.data.tags.get(RUN_KIND) == "sweep" for r in runs)


def _name(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline()[:1]) or process.name()
    except psutil.Error:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/sweep_kill_campaign"))
    parser.add_argument("--max-delay", type=float, default=40.0, help="seconds to a random kill: U(0, this)")
    args = parser.parse_args()
    outcome = campaign(args.folder, args.kills, args.seed, args.samples, args.max_delay)
    print(json.dumps(outcome, indent=1))
    ok = (outcome["final run exit"] == 0 and outcome["trials"] == outcome["trials done or stopped"] == args.samples
          and not outcome["trials trained again after their stop line"]
          and not outcome.get("Ray processes alive 5 s after a kill")
          and not outcome["trials whose lines disagree with each other or the summary"]
          and outcome["MLflow parent runs of the sweep"] == 1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
