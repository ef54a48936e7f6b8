"""`reprogbench bench`'s measurements of the launchers and the CLI (bench measures the trainer and never uses launch):
the demo grid with --workers 1 vs --workers 2, each a whole `reprogbench run`; `--help`'s start-up against an
`import torch`, what the parser avoids."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.files import RESULT
from bench.record import read_record
from bench.speed import Measurement, Settings, report


def measurements() -> dict[str, Callable[[Settings], Measurement]]:
    """bench's measurements with the launchers' among them, in the order they run."""
    return report.measurements({"grid": grid_workers, "help": help_startup})


def grid_workers(settings: Settings) -> Measurement:
    """The demo grid's wall-clock with --workers 1 vs --workers 2 (quick: epochs cut to 2, pretrain to 1)."""
    from bench.grid import GRIDS_DIR

    text = yaml.safe_load((GRIDS_DIR / "demo.yaml").read_text())
    if settings.quick:
        text["hparams"]["epochs"] = 4
        text["originals"][0]["hparams"]["epochs"] = 1
        text["split"]["max_train"] = 3_000
    path = Path(settings.workdir) / "demo.yaml"
    path.write_text(yaml.safe_dump(text))
    rows = []
    for workers in (1, 2):
        results = Path(settings.workdir) / f"demo_workers{workers}"
        cmd = [sys.executable, "-m", "launch.cli", "run", str(path), "--results", str(results), "--no-tracking",
               "--workers", str(workers)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"demo grid with --workers {workers} failed: {proc.stderr.strip()[-800:]}")
        done = [r for r in map(read_record, _cell_dirs(results)) if r is not None and r.done]
        rows.append({"workers": workers, "wall s": wall, "cells": len(done)})
    return Measurement(
        name="grid: the demo grid with --workers 1 vs --workers 2", rows=rows,
        ratio=rows[0]["wall s"] / rows[1]["wall s"], ratio_label="wall-clock 1 worker / 2 workers",
        notes=["whole `reprogbench run` including start-up; the pretrain wave is one cell and cannot be split"
               + ("; quick: 4 epochs, pretrain 1 epoch, at most 3,000 training images" if settings.quick else "")])


def _cell_dirs(results: Path) -> list[Path]:
    return [p.parent for p in sorted(results.rglob(RESULT))]


HELP_COMMANDS = {"reprogbench --help": ["--help"], "reprogbench run --help": ["run", "--help"]}


def help_startup(settings: Settings) -> Measurement:
    """Wall-clock of `reprogbench --help` and `run --help` (best of 5 each: a shared machine's noise is one-sided),
    beside `python -c "import torch"`, the start-up a parser that imported torch would pay."""
    def best_of(cmd: list[str]) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    rows = [{"command": name, "wall s": best_of([sys.executable, "-m", "launch.cli", *argv])}
            for name, argv in HELP_COMMANDS.items()]
    rows.append({"command": "python -c 'import torch'", "wall s": best_of([sys.executable, "-c", "import torch"])})
    return Measurement(
        name="help: CLI start-up against an import of torch", rows=rows,
        ratio=rows[-1]["wall s"] / rows[1]["wall s"], ratio_label="wall-clock import torch / run --help",
        target="--help well under 1 s", notes=["whole processes, interpreter start-up included; best of 5 each"])
