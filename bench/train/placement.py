"""Where a task's images live while a pack trains: on the device whole (`device`: small datasets, the fast path
airbench takes), or in host memory / the memory-mapped cache, streamed a batch at a time (`stream`).

`auto` streams when the images would take more than `SAFETY` of the memory they would be copied into: free
device memory on a GPU (`torch.cuda.mem_get_info`), available host memory on a CPU run (MemAvailable, a cgroup's
memory.max and the process's RLIMIT_DATA / RLIMIT_AS, whichever is least). The rest is left for the model, its
activations and the optimizer.
"""
from __future__ import annotations

import resource
from pathlib import Path

import torch

from bench.data.types import ImageRows, ImageSet, TaskData

DATA_PATHS = ("auto", "device", "stream")
SAFETY = 0.5  # at most this share of the free memory goes to the images
COPY_CHUNK = 1024  # images per host -> device copy when a mapped set is put on the device whole


def images_bytes(task: TaskData, device: torch.device) -> int:
    """What putting the three splits on `device` whole would add: on a CPU, sets already in memory cost nothing
    (they are used as they are); mapped sets are read into memory."""
    sets = (task.train, task.val, task.test)
    if device.type == "cpu":
        sets = tuple(s for s in sets if isinstance(s, ImageRows))
    return sum(s.nbytes for s in sets)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cgroup_left() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), None without a limit."""
    try:
        group = Path("/proc/self/cgroup").read_text().strip().split("::")[-1]
        folder = Path("/sys/fs/cgroup") / group.lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((folder / "memory.current").read_text())
    except (OSError, ValueError, IndexError):
        return None


def _status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _rlimit_left() -> int | None:
    """What RLIMIT_DATA and RLIMIT_AS leave this process (None: unlimited)."""
    left = []
    for limit, used in ((resource.RLIMIT_DATA, "VmData"), (resource.RLIMIT_AS, "VmSize")):
        soft, _ = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY:
            left.append(soft - (_status_bytes(used) or 0))
    return min(left) if left else None


def host_memory_free() -> int | None:
    """The least of what the machine, the cgroup and the process's limits leave (None: nothing known)."""
    known = [b for b in (_meminfo_available(), _cgroup_left(), _rlimit_left()) if b is not None]
    return max(0, min(known)) if known else None


def free_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return host_memory_free()


def choose_data_path(requested: str, need: int, free: int | None) -> str:
    """`device` or `stream`: `requested` unless it is `auto`, then by whether `need` bytes fit SAFETY x `free`."""
    if requested not in DATA_PATHS:
        raise ValueError(f"data path {requested!r}: choose one of {', '.join(DATA_PATHS)}")
    if requested != "auto":
        return requested
    return "stream" if free is not None and need > SAFETY * free else "device"


def to_device(images: ImageSet, device: torch.device) -> torch.Tensor:
    """The set's images on `device` whole. A mapped set is copied a chunk at a time, so a GPU run never holds a
    second, host copy of the whole dataset on the way."""
    if not isinstance(images, ImageRows):
        return images.images.to(device)
    out = torch.empty((len(images), *images.sample_shape), dtype=torch.uint8, device=device)
    for lo in range(0, len(images), COPY_CHUNK):
        index = torch.arange(lo, min(lo + COPY_CHUNK, len(images)))
        out[lo:lo + len(index)] = images.gather(index).to(device)
    return out
