"""Where dataset files live: the data root, and the Debian package that ships Fashion-MNIST."""
from __future__ import annotations

import gzip
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

DATA_ENV = "REPROGBENCH_DATA"
DEBIAN_FASHION_ENV = "REPROGBENCH_DEBIAN_FASHION_MNIST"  # tests point it at fake or missing files
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist


def default_data_root() -> Path:
    """$REPROGBENCH_DATA if set, else ~/.cache/reprogbench/data."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "reprogbench" / "data"


def resolve_root(data_root: str | Path | None) -> Path:
    return Path(data_root).expanduser() if data_root is not None else default_data_root()


def debian_fashion_mnist_dir() -> Path:
    return Path(os.environ.get(DEBIAN_FASHION_ENV, DEBIAN_FASHION_DIR))


def has_gz_files(src: Path, names: Sequence[str]) -> bool:
    return all((src / f"{name}.gz").is_file() for name in names)


def unpack_gz_files(src: Path, names: Sequence[str], dest: Path) -> bool:
    """Gunzip `src/NAME.gz` to `dest/NAME` for every name not already there. False if a source is missing.

    Each file is written to a temporary name and renamed, so two jobs unpacking at once, or a job killed
    halfway, never leave a truncated file that a later run would trust.
    """
    if not has_gz_files(src, names):
        return False
    todo = [name for name in names if not (dest / name).is_file()]
    if not todo:
        return True
    dest.mkdir(parents=True, exist_ok=True)
    for name in todo:
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, gzip.open(src / f"{name}.gz", "rb") as inp:
                shutil.copyfileobj(inp, out, 1 << 20)
            os.replace(tmp, dest / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    print(f"reprogbench: unpacked {len(todo)} file(s) from {src} into {dest}", file=sys.stderr)
    return True
