"""Downloaded weights are checked against the sha256 their source publishes, at `prepare` and again at load.

Expected digests, in this order: `<file>.sha256` (the full sha256 that `reprogbench prepare` pins once the file
matched its published checksum), the Hugging Face cache's blob name (the file's full sha256), the prefix
torchvision puts in each file name (resnet18-f37072fd.pth; torch.hub's `check_hash` convention). A file is
hashed once per process (keyed by path, size and mtime): a vgg19 file is 550 MB.
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Optional

from bench.files import write_text
from bench.models.backbone import WeightsMissing

PIN_SUFFIX = ".sha256"
_TORCH_HUB_HASH = re.compile(r"-([a-f0-9]*)\.")  # torch.hub.HASH_REGEX


class WeightsCorrupt(WeightsMissing, ValueError):
    """A weights file whose sha256 is not the published one: a truncated or corrupt download."""


def pin_path(path: Path) -> Path:
    return path.with_name(path.name + PIN_SUFFIX)


def expected_sha256(path: Path) -> Optional[str]:
    """The digest (or published prefix) `path` must have; None when its source publishes none."""
    pinned = pin_path(path)
    if pinned.is_file():
        return pinned.read_text().strip().split()[0].lower()
    blob = Path(path).resolve()
    if re.fullmatch(r"[0-9a-f]{64}", blob.name):
        return blob.name
    match = _TORCH_HUB_HASH.search(Path(path).name)
    return match.group(1) if match else None


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    stat = Path(path).resolve().stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def check(path: Path, name: str) -> str:
    """One line saying what was checked; WeightsCorrupt (one line, naming the fix) when it does not match."""
    expected = expected_sha256(path)
    if not expected:
        return f"{path} (its source publishes no checksum)"
    actual = sha256_of(path)
    if not actual.startswith(expected):
        raise WeightsCorrupt(f"sha256 mismatch (published {expected[:8]}..., file {actual[:8]}...): a corrupt or "
                             f"truncated download; delete {path} and run `reprogbench prepare --weights {name}`")
    return f"{path} (sha256 matches)"


def pin(path: Path) -> None:
    """After `check` passed at prepare: keep the file's full sha256 beside it, so a load checks every bit."""
    pinned = pin_path(path)
    if Path(path).resolve().parent.name == "blobs" or pinned.is_file():
        return  # a Hugging Face blob is named by its full sha256 already
    write_text(pinned, f"{sha256_of(path)}  {Path(path).name}\n")  # the one writer: a planted link is replaced
