"""`reprogbench prepare`: on a login node with internet, fetch exactly the datasets and ImageNet weights a grid
needs, verify them, and say what is present and what is still missing.

Compute nodes never download (their `run` stops before any cell when something is missing); this is the one
step that does. Without internet it fails in seconds with the list of what it could not fetch, never hangs:
each weights host is probed once with a short timeout before anything is requested from it.
"""
from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tabulate import tabulate

from bench.data import dataset_available, dataset_info, known_task, list_datasets, needs_download
from bench.data import prepare as prepare_dataset
from bench.grid import MAX_CELLS, GridError, load_grid, resolve_grid_path
from bench.models import checksums
from bench.models.weights import (
    download_weights,
    verify_weights,
    weights_file,
    weights_host,
    weights_path,
    weights_present,
)
from bench.registry import UnknownName
from launch.preflight import Inputs

PROBE_TIMEOUT_S = 10
DOWNLOAD_TIMEOUT_S = 60  # a stalled socket read fails instead of hanging


@dataclass(frozen=True)
class Outcome:
    kind: str  # "dataset" | "weights"
    name: str
    status: str  # "present", "fetched" or "missing"
    detail: str  # where it is, or why it could not be fetched


def inputs_of(targets: list[str], weights: list[str], data_root: Path | None, max_cells: int = MAX_CELLS) -> Inputs:
    """Datasets and weights named by `targets` (grid names / files, or dataset names) and `--weights`."""
    datasets: set[str] = set()
    backbones = set(weights)
    for target in targets:
        if known_task(target):  # a registered name, a family's (folder:<name>) or a joint task
            datasets.add(target)
            continue
        try:
            path = resolve_grid_path(target)
        except GridError:
            raise UnknownName(f"{target!r} is neither a dataset nor a grid (a YAML file or a shipped grid); "
                              f"datasets: {', '.join(list_datasets())}") from None
        grid = load_grid(path, data_root=data_root, max_cells=max_cells)
        needed = Inputs.of(grid.cells + grid.unprepared)  # an optional original's cells too
        datasets |= set(needed.datasets)
        backbones |= set(needed.weights)
    for name in backbones:
        weights_file(name)  # a name with no downloadable weights: UnknownName, one line listing what has them
    return Inputs(tuple(sorted(datasets)), tuple(sorted(backbones)))


@cache
def unreachable(host: str) -> str | None:
    """None if `host` accepts a TCP connection on 443 within PROBE_TIMEOUT_S, else why not."""
    try:
        socket.create_connection((host, 443), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        return f"cannot reach {host} ({e.strerror or e})"
    return None


def _one_line(exc: BaseException) -> str:
    # long enough for a dataset fetched by hand: its line names where it was looked for, a URL and the layout
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 600 else text[:597] + "..."


def prepare_dataset_outcome(name: str, data_root: Path) -> Outcome:
    if dataset_available(name, data_root):
        detail = str(data_root) if needs_download(name) else dataset_info(name).source
        return Outcome("dataset", name, "present", detail)
    try:
        where = prepare_dataset(name, data_root)
    except Exception as e:  # noqa: BLE001 - urllib, gdown, torchvision's md5 check: reported, the rest go on
        return Outcome("dataset", name, "missing", _one_line(e))
    return Outcome("dataset", name, "fetched", f"{where} (torchvision checks the md5 it publishes)")


def verified_and_pinned(name: str) -> str:
    """Check the file against its published checksum, then keep its full sha256 beside it for every later load."""
    checked = verify_weights(name)
    checksums.pin(weights_path(name))
    return checked


def prepare_weights_outcome(name: str) -> Outcome:
    try:
        if weights_present(name):
            return Outcome("weights", name, "present", verified_and_pinned(name))
        why = unreachable(weights_host(name))
        if why:
            return Outcome("weights", name, "missing", why)
        download_weights(name)
        return Outcome("weights", name, "fetched", verified_and_pinned(name))
    except Exception as e:  # noqa: BLE001 - a network or checksum error for one file; the others go on
        return Outcome("weights", name, "missing", _one_line(e))


def prepare(inputs: Inputs, data_root: Path) -> list[Outcome]:
    """Fetch and verify every input, one line of progress each; returns what happened to each."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    outcomes = []
    try:
        total = len(inputs.datasets) + len(inputs.weights)
        steps = [(prepare_dataset_outcome, (d, data_root)) for d in inputs.datasets]
        steps += [(prepare_weights_outcome, (w,)) for w in inputs.weights]
        for i, (step, args) in enumerate(steps, 1):
            print(f"[{i}/{total}] {'dataset' if step is prepare_dataset_outcome else 'weights'} {args[0]} ...",
                  file=sys.stderr, flush=True)
            outcomes.append(step(*args))
    finally:
        socket.setdefaulttimeout(previous)
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    rows = [[o.kind, o.name, o.status, o.detail] for o in outcomes]
    return tabulate(rows, headers=["kind", "name", "status", "where / why"])
