"""Run the measurements, print each as a table with its headline ratio, and append them to BENCHMARKS.md."""
from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import torch
from tabulate import tabulate

from bench.speed import Measurement, Settings

SECTION = "## `reprogbench bench` runs"


Measurements = Mapping[str, Callable[[Settings], Measurement]]


def measurements(more: Optional[Measurements] = None) -> dict[str, Callable[[Settings], Measurement]]:
    """Name -> measurement, in the order they run (cheapest first, so a quick look comes back fast); `more`: those
    of the layers above bench (`launch.speed`), run before the GPU-only one."""
    from bench.speed import data_path, gpu_step, steps, streaming, trainer_runs

    return {
        "frozen": steps.frozen_ar_step,
        "data": data_path.data_path,
        "decode": streaming.decode_first_epoch,
        "stream": streaming.streamed_vs_device,
        "linear_probe": trainer_runs.linear_probe_cache,
        "pack": trainer_runs.packed_cells,
        "ddp": trainer_runs.ddp_scaling,
        **(more or {}),
        "gpu": gpu_step.gpu_ar_step,
    }


def default_names(device: torch.device, table: Measurements) -> list[str]:
    names = list(table)
    return names if device.type == "cuda" else [n for n in names if n != "gpu"]


def run_all(names: list[str], settings: Settings, table: Measurements,
            echo: Callable[[str], None] = print) -> list[Measurement]:
    results = []
    for i, name in enumerate(names, 1):
        echo(f"[{i}/{len(names)}] {name} ...")
        start = time.perf_counter()
        try:
            result = table[name](settings)
        except Exception as exc:  # noqa: BLE001 - one failed measurement must not hide the others
            traceback.print_exc(file=sys.stderr)
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            result = Measurement(name=name, rows=[], ratio=None, ratio_label="",
                                 notes=[f"FAILED: {type(exc).__name__}: {first_line}"])
        results.append(result)
        echo(format_console(result) + f"\n({time.perf_counter() - start:.0f}s)\n")
    return results


def _ratio_line(m: Measurement) -> str:
    ratio = f"{m.ratio:.2f}x" if m.ratio is not None else "not measured"
    target = f"; target {m.target}" if m.target else ""
    return f"ratio: {ratio} ({m.ratio_label}){target}"


def _table(m: Measurement, fmt: str) -> str:
    return tabulate(m.rows, headers="keys", tablefmt=fmt, floatfmt=".4g") if m.rows else "(no rows)"


def format_console(m: Measurement) -> str:
    return "\n".join([m.name, _table(m, "simple"), _ratio_line(m), *(f"  {note}" for note in m.notes)])


def machine_line(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f"; GPU {torch.cuda.get_device_name()}" if device.type == "cuda" else ""
    # other work on the machine distorts CPU timings badly (a busy core can halve 2-thread throughput): say it
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"machine: {cpu}, {os.cpu_count()} cores{gpu}; device {device.type}; torch {torch.__version__} "
            f"({torch.get_num_threads()} threads); python {platform.python_version()}; load average {load}")


def format_markdown(results: list[Measurement], command: str, device: torch.device) -> str:
    from bench.provenance import git_commit

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {stamp}: `{command}`", "", machine_line(device) + f"; git {git_commit()}", ""]
    for m in results:
        lines += [f"#### {m.name}", "", _table(m, "github"), "", f"**{_ratio_line(m)}**", ""]
        lines += [f"- {note}" for note in m.notes] + [""]
    return "\n".join(lines)


def append_markdown(path: Path, text: str) -> None:
    existing = path.read_text() if path.is_file() else "# Benchmarks\n"
    if SECTION not in existing:
        existing = existing.rstrip("\n") + f"\n\n{SECTION}\n\nAppended by `reprogbench bench`, newest last.\n"
    path.write_text(existing.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")


def main(device_name: str | None, quick: bool, names: list[str] | None, output: Path | None, workdir: str | None,
         command: str, table: Optional[Measurements] = None) -> int:
    """Run `names` (default: every measurement of `table`, default bench's own, that the device can run)."""
    table = measurements() if table is None else table
    if device_name == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the trainer and its subprocesses pick CUDA when they see it
    elif device_name == "cuda" and not torch.cuda.is_available():
        print("reprogbench: error: --device cuda but no CUDA device is visible; use --device cpu", file=sys.stderr)
        return 2
    device = torch.device(device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    names = names or default_names(device, table)
    with tempfile.TemporaryDirectory(prefix="reprogbench-bench-") as scratch:
        settings = Settings(device=device, quick=quick, workdir=workdir or scratch)
        print(machine_line(device))
        results = run_all(names, settings, table)
    if output is not None:
        append_markdown(output, format_markdown(results, command, device))
        print(f"appended to {output}")
    failed = [m.name for m in results if m.ratio is None]
    if failed:
        print(f"reprogbench: {len(failed)} measurement(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
