"""A results folder's layout and the one way files are written into it (atomically).

`results/<grid>/<cell_id>/` holds `result.json` (done or failed: `bench.record`), `checkpoint.pt` (latest epoch;
with `checkpoint.pt.sha256` and the epoch before, `checkpoint.prev.pt`: `bench.checkpoint`), `model.pt` (a
pretrain cell's weights, which other cells load), `error.txt` (a failed cell's traceback) and `mlflow_run_id` (so a
resumed cell keeps logging into the same MLflow run).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

RESULT = "result.json"
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
ERROR = "error.txt"
MLFLOW_RUN = "mlflow_run_id"


class ResultsUnusable(ValueError):
    """The results folder cannot hold results (a file is there, or it is read-only); one line with the fix."""


def check_results_root(results_root: Path) -> None:
    """Before anything is written: the folder (or the first part of its path that exists) is a writable folder."""
    path = Path(results_root).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ResultsUnusable(f"--results {results_root}: {existing} is a file, not a folder; give a folder (it is "
                              "created if missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        why = "read-only" if os.statvfs(existing).f_flag & os.ST_RDONLY else "not writable by this user"
        raise ResultsUnusable(f"--results {results_root}: {existing} is {why}; give a folder this user can write "
                              "(or set $REPROGBENCH_RESULTS)")


def cell_dir(results_root: Path, grid: str, cell_id: str) -> Path:
    return Path(results_root) / grid / cell_id


def atomic_write(path: Path, write) -> None:
    """Write to a temporary file in the same folder, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True).encode()))


def write_text(path: Path, text: str) -> None:
    atomic_write(Path(path), lambda f: f.write(text.encode()))


def read_json(path: Path) -> Optional[dict]:
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # cannot happen with atomic writes; a hand-edited file counts as absent
