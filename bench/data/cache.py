"""The decoded-image cache: encoded files (`ImageFiles`) decoded once at a size into a uint8 file beside the data,
memory-mapped by every later load, cell and backbone.

`<data_root>/.cache/<cache_key>-<size>px-<digest>.u8` holds the (N, 3, size, size) array, C order, no header;
`<same name>.json` beside it says what it holds. The digest is of the decoder's format, the size and the file
list (relative path, byte size and modification time of each file, in order): a file added, removed, renamed,
rewritten or touched names another cache, so a stale one is never read. Checking it costs one stat per file.

Written under a temporary name and renamed, the array first and its header last: a header means a complete
array, so a killed job or two jobs at once never leave a truncated cache (two jobs decode twice; the last rename
wins, with the same bytes). A data root that cannot be written to still works: the images are decoded into an
unnamed temporary file, mapped the same way, and decoded again next time.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.files import read_json

CACHE_FORMAT = 1  # bump when the decoding changes (filter, colour conversion), so old caches are not reused


@dataclass(frozen=True)
class CacheEntry:
    """Where one decoded array lives and what it must hold."""

    data: Path  # the .u8 array
    header: dict  # what its .json says when it is complete

    @property
    def header_path(self) -> Path:
        return self.data.with_suffix(".json")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.header["shape"])


def files_digest(root: Path, files: list[str], size: int) -> str:
    """sha256 over the decoder's format, the size and each file's (path, bytes, mtime_ns), in order."""
    h = hashlib.sha256(f"format={CACHE_FORMAT} size={size}\n".encode())
    for name in files:
        st = os.stat(root / name)
        h.update(f"{name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def cache_entry(cache_dir: Path, cache_key: str, root: Path, files: list[str], size: int) -> CacheEntry:
    digest = files_digest(root, files, size)
    data = Path(cache_dir) / f"{cache_key}-{size}px-{digest}.u8"
    header = {"format": CACHE_FORMAT, "cache_key": cache_key, "digest": digest, "dtype": "uint8",
              "shape": [len(files), 3, size, size]}
    return CacheEntry(data, header)


def open_array(path_or_file, shape: tuple[int, ...]) -> torch.Tensor:
    """The uint8 array as a tensor over a read-only mapping: pages are read from disk when touched, and are page
    cache (reclaimable), not the process's anonymous memory."""
    mapped = np.memmap(path_or_file, dtype=np.uint8, mode="r", shape=shape)
    with warnings.catch_warnings():  # torch warns that the array is read-only; nothing writes through it
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(mapped)


def read_cached(entry: CacheEntry) -> torch.Tensor | None:
    """The complete cached array, or None (absent, incomplete, or a header that does not match)."""
    header = read_json(entry.header_path) if entry.header_path.is_file() else None
    expected = int(np.prod(entry.shape))
    if header != entry.header or not entry.data.is_file() or entry.data.stat().st_size != expected:
        return None
    return open_array(entry.data, entry.shape)


class CacheWriter:
    """A writable mapping to decode into, then `finish()` -> the read-only array (the named cache once renamed)."""

    def __init__(self, entry: CacheEntry):
        self.entry, self.named = entry, True
        try:
            entry.data.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=entry.data.parent, prefix=f".{entry.data.name}.", suffix=".part")
            self.file, self.tmp = os.fdopen(fd, "w+b"), Path(tmp)
        except OSError as e:  # a read-only data root: an unnamed temporary file, gone when the process ends
            print(f"reprogbench: warning: cannot write the image cache in {entry.data.parent} ({e}); decoding "
                  f"into a temporary file, and again next time", file=sys.stderr)
            self.file, self.tmp, self.named = tempfile.TemporaryFile(), None, False
        self.file.truncate(int(np.prod(entry.shape)))  # sparse: no memory or disk taken before a row is written
        self.array = np.memmap(self.file, dtype=np.uint8, mode="r+", shape=entry.shape)

    def finish(self) -> torch.Tensor:
        self.array.flush()
        del self.array
        if not self.named:
            images = open_array(self.file, self.entry.shape)
            self.file.close()  # the mapping keeps the unnamed file alive
            return images
        self.file.close()
        os.replace(self.tmp, self.entry.data)
        header_tmp = self.entry.header_path.with_name(f".{self.entry.header_path.name}.{os.getpid()}.part")
        header_tmp.write_text(json.dumps(self.entry.header, indent=1))
        os.replace(header_tmp, self.entry.header_path)
        return open_array(self.entry.data, self.entry.shape)

    def abort(self) -> None:
        self.file.close()
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
