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


class UnsafePath(ValueError):
    """A write would follow a link planted inside the results folder, or land outside the folders this process
    writes; the message names the path and the fix."""


# the folders this process writes into (the results root, a report's --out): set by the commands and by each
# worker (`write_under`); empty: a library caller, whose paths are only kept from following links at the file
_ROOTS: list[Path] = []


def write_under(root: Path) -> None:
    """Let the writer write below `root` (the root itself may be a link, e.g. to a scratch disk)."""
    root = Path(root).expanduser().absolute()
    if root not in _ROOTS:
        _ROOTS.append(root)


def check_inside(path: Path) -> None:
    """UnsafePath if a folder between a root given to `write_under` and `path` is a symbolic link: a link planted as
    a grid's or cell's folder would send every write elsewhere. (The file itself may be a link: the writer
    replaces it, never writing through it.) Grid names and cell ids cannot hold `..` or separators (bench.grid),
    so below a root no path the suite builds leaves it but through a link."""
    path = Path(path).expanduser().absolute()
    root = next((r for r in sorted(_ROOTS, key=lambda r: -len(r.parts)) if path.is_relative_to(r)), None)
    if root is None:
        return
    folder = root
    for part in path.relative_to(root).parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise UnsafePath(f"{folder} is a symbolic link (to {os.readlink(folder)}); the suite writes only inside "
                             "its results folder: remove the link, or give --results the folder it points to")


def cell_dir(results_root: Path, grid: str, cell_id: str) -> Path:
    return Path(results_root) / grid / cell_id


def atomic_write(path: Path, write) -> None:
    """The one way the suite writes a file: to a temporary file in the same folder, then renamed over the name, so
    a reader never sees half a file and a link planted at the name is replaced, never written through; the folder
    must be inside the results (`check_inside`)."""
    path = Path(path)
    check_inside(path)
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


def remove_leftover_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files `atomic_write` leaves in `directory` when its writer is killed (-9, out of
    memory) before the rename; -> those removed. Only for a folder no live process writes: a cell's folder once
    its lock is held, or after the worker that trained it is gone."""
    removed = []
    for leftover in Path(directory).glob(".*.tmp"):
        if leftover.is_file() and not leftover.is_symlink():
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True).encode()))


def write_text(path: Path, text: str) -> None:
    atomic_write(Path(path), lambda f: f.write(text.encode()))


def own_file(path: Path) -> bool:
    """A regular file at `path` that is not a link: nothing the suite writes is a link, so one found at a name
    it writes was planted, and is neither read nor written through (the next write replaces it)."""
    path = Path(path)
    return path.is_file() and not path.is_symlink()


def read_own_text(path: Path) -> Optional[str]:
    return Path(path).read_text() if own_file(path) else None


def read_json(path: Path) -> Optional[dict]:
    path = Path(path)
    if not own_file(path):
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # cannot happen with atomic writes; a hand-edited file counts as absent
