"""The MLflow results page in a real browser: `reprogbench ui GRID` started on a store, the URL it prints opened in
headless Chromium, the page's DOM checked for every cell run and the test-accuracy column, and a screenshot saved.

    .venv/bin/python tests/mlflow_screenshot.py demo --results results --out docs/mlflow_results.png

Run by hand (Chromium is not a test dependency; Debian: `apt-get install chromium`). Exit 0 when the page shows
every cell run of the grid's experiment and the `final/test_acc` column, 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_helper import cli_argv  # noqa: E402

from bench.track_names import RESULTS_FILTER, TEST_ACC  # noqa: E402

URL = re.compile(r"(http://\S+/#/experiments/\S+)")


def chromium(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not exe:
        sys.exit("no chromium on PATH: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile: no saved MLflow view of an earlier visit
        return subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                               "--window-size=1920,800", "--virtual-time-budget=30000", *args],
                              capture_output=True, text=True, timeout=300)


def cell_run_names(results: Path, grid: str) -> list[str]:
    client = MlflowClient(f"sqlite:///{results.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(grid)
    return [r.info.run_name for r in client.search_runs([experiment.experiment_id], RESULTS_FILTER)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=Path("docs/mlflow_results.png"))
    parser.add_argument("--port", type=int, default=5077)
    args = parser.parse_args()
    ui = subprocess.Popen(cli_argv("ui", args.grid, "--results", args.results, "--port", args.port),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = ui.stdout.readline()  # printed once the server answers
        found = URL.search(line)
        if not found:
            print(f"reprogbench ui printed no URL: {line!r}")
            return 1
        url = found.group(1)
        print(f"opening {url}")
        dom = chromium("--dump-dom", url).stdout
        chromium(f"--screenshot={args.out.resolve()}", url)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
    names = cell_run_names(args.results, args.grid)
    # the grid cuts long names with an ellipsis, but the full name is the link's text in the DOM
    missing = [n for n in names if n not in dom]
    column = TEST_ACC in dom
    print(f"{len(names) - len(missing)}/{len(names)} cell runs on the page; {TEST_ACC} column "
          f"{'shown' if column else 'MISSING'}; screenshot {args.out}")
    for n in missing:
        print(f"  not on the page: {n}")
    return 0 if column and not missing and args.out.is_file() else 1


if __name__ == "__main__":
    sys.exit(main())
