"""A cell's checkpoints: written atomically with a checksum, the previous good one kept, checked on every read.

`checkpoint.pt` is a plain torch file (`torch.load(path, weights_only=True)` reads it); beside it
`checkpoint.pt.sha256` holds its sha256, size and epoch. Each save moves the current pair to
`checkpoint.prev.pt(.sha256)` first, but only if it still matches its checksum, so a good previous checkpoint
is never replaced by a bad one. A reader takes the newest checkpoint that matches its checksum and loads with
torch's `weights_only` unpickler: a truncated file, flipped bytes, garbage or a file that does not match its
checksum is reported in one line and skipped for the previous one, else the cell starts from scratch.

A checkpoint without a `.sha256` file (written by an older version, or a crash between the two renames: the
torch file is fsynced before it is renamed, so it is whole) is accepted if torch can load it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from bench.files import CHECKPOINT as LATEST
from bench.files import atomic_write, check_inside

PREVIOUS = "checkpoint.prev.pt"
SUFFIX = ".sha256"


class CorruptCheckpoint(ValueError):
    """A checkpoint file that does not match its checksum or cannot be loaded."""


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def _manifest(path: Path) -> Optional[dict]:
    try:
        return json.loads(checksum_path(path).read_text())
    except (OSError, ValueError):
        return None


def verify(path: Path) -> Optional[dict]:
    """The checksum record of `path` if the file matches it, None if there is none; CorruptCheckpoint if not."""
    manifest = _manifest(path)
    if manifest is None:
        return None
    size = path.stat().st_size
    if size != manifest.get("size"):
        raise CorruptCheckpoint(f"{path.name} is {size} bytes, its checksum file says {manifest.get('size')} "
                                "(truncated?)")
    if _sha256_file(path) != manifest.get("sha256"):
        raise CorruptCheckpoint(f"{path.name} does not match its sha256")
    return manifest


def save(directory: Path, state: dict) -> None:
    """Write `state` (with an int `epoch`) as the latest checkpoint, keeping the previous good one."""
    directory = Path(directory)
    check_inside(directory / LATEST)  # before mkdir: a linked folder must not even get a folder made through it
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    latest, previous = directory / LATEST, directory / PREVIOUS
    if latest.is_file() and _good(latest):
        # the checksum moves first: killed between the two renames, the latest is left without a checksum (taken if
        # it loads, and it does: it was just checked) instead of the previous being left beside a checksum that is
        # not its own (skipped as corrupt: with no latest, the cell restarted from epoch 0)
        if checksum_path(latest).is_file():
            os.replace(checksum_path(latest), checksum_path(previous))
        else:
            checksum_path(previous).unlink(missing_ok=True)
        os.replace(latest, previous)
    _write_atomic(latest, data)
    manifest = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "epoch": int(state["epoch"])}
    _write_atomic(checksum_path(latest), json.dumps(manifest).encode())
    _fsync_dir(directory)


def save_file(path: Path, obj: Any) -> None:
    """A torch file written atomically with its `.sha256` beside it (a pretrain cell's `model.pt`); `verify` checks
    it."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    check_inside(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data)
    _write_atomic(checksum_path(path), json.dumps({"sha256": hashlib.sha256(data).hexdigest(),
                                                   "size": len(data)}).encode())
    _fsync_dir(path.parent)


def _good(path: Path) -> bool:
    """Whether `load` would take this file (a save never rotates a bad latest over a good previous one)."""
    try:
        verify(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - whatever torch says about a broken file, it is not a good checkpoint
        return False
    return isinstance(state, dict) and isinstance(state.get("epoch"), int)


@dataclass
class Loaded:
    state: Optional[dict]  # None: no good checkpoint, start from scratch
    path: Optional[Path]
    problems: list[str]  # one line per checkpoint that was skipped, and what was done instead


def load(directory: Path, map_location: Any = "cpu", check: Optional[Callable[[dict], None]] = None) -> Loaded:
    """The newest good checkpoint in `directory`. `check(state)` may raise CorruptCheckpoint (e.g. wrong cell)."""
    problems: list[str] = []
    candidates = [p for p in (Path(directory) / LATEST, Path(directory) / PREVIOUS) if p.is_file()]
    for path in candidates:
        try:
            verify(path)
            try:
                state = torch.load(path, map_location=map_location, weights_only=True)
            except Exception as exc:  # noqa: BLE001 - truncated zip, garbage, a pickle weights_only refuses
                raise CorruptCheckpoint(f"{path.name} cannot be loaded ({type(exc).__name__}: "
                                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
            if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
                raise CorruptCheckpoint(f"{path.name} is not a reprogbench checkpoint")
            if check is not None:
                check(state)
        except CorruptCheckpoint as exc:
            problems.append(str(exc))
            continue
        return Loaded(state, path, _explain(problems, directory, f"falling back to {path.name} "
                                            f"(epoch {state['epoch']})"))
    return Loaded(None, None, _explain(problems, directory, "no good checkpoint left: restarting from epoch 0"))


def _explain(problems: list[str], directory: Path, action: str) -> list[str]:
    return [f"checkpoint in {directory}: {p}; {action}" for p in problems]


def good_epoch(directory: Path) -> int:
    """The epoch `load` would resume from (0: none). It loads the checkpoint as `load` does: used for packable
    cells only, whose checkpoints hold a program or a head, not a whole network."""
    state = load(directory).state
    return state["epoch"] if state is not None else 0
