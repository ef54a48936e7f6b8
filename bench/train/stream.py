"""The streamed data path: a split whose images stay in host memory or in the memory-mapped cache, read a batch at
a time, the next batch gathered (and on a GPU copied) while the current step runs.

A batch's rows are read in file order (`ImageSet.gather_sorted`) into a pinned buffer, copied `non_blocking` on a
side CUDA stream, and put back in the asked order on the device; a background thread does this one step ahead of
the loop (on a CPU it gathers only). What the loop sees is what the device-resident `Split` gives for the same
indices, bit for bit: augmentation and normalisation stay on the device, the batch order is the loop's.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence

import torch

from bench.data.types import ImageSet

PREFETCH_STEPS = 2  # steps gathered ahead of the loop: one in flight, one ready


class StreamedSplit:
    """A split as the loop sees it (the interface of `bench.train.evaluation.Split`), images off the device."""

    features = False

    def __init__(self, images: ImageSet, device: torch.device):
        self.images, self.device = images, _with_index(torch.device(device))
        self.host_labels = images.labels
        self.labels = images.labels.to(self.device)
        self.cuda = self.device.type == "cuda"

    @property
    def index_device(self) -> torch.device:
        return torch.device("cpu")  # indices address host rows

    def labels_of(self, idx: torch.Tensor) -> torch.Tensor:
        return self.labels[idx.to(self.device, non_blocking=True)] if self.cuda else self.labels[idx]

    def my_share(self, dist) -> torch.Tensor:
        return torch.arange(dist.rank, len(self.labels), dist.world)

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """One batch, read now (no overlap): for a single first batch (compile warm-up, a feature's width)."""
        return next(self.batches([[idx]]))[0]

    def batches(self, steps: Iterable[Sequence[torch.Tensor]]) -> Iterator[list[torch.Tensor]]:
        """For each step's index tensors, their float batches in [0, 1] on the device, the next step prefetched."""
        fetcher = _Prefetcher(self, steps)
        try:
            for rows in fetcher:
                yield [self._finish(*r) for r in rows]
        finally:
            fetcher.close()

    def _read(self, idx: torch.Tensor, buffer: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(uint8 rows on the device, the order that puts them back), run by the prefetch thread."""
        if not self.cuda:
            return self.images.gather(idx), None
        rows, order = self.images.gather_sorted(idx, out=buffer[: len(idx)])
        moved = rows.to(self.device, non_blocking=True)
        return moved, None if order is None else order.to(self.device, non_blocking=True)

    def _finish(self, rows: torch.Tensor, order: torch.Tensor | None) -> torch.Tensor:
        if self.cuda:  # made on the side stream: keep the memory from being reused while this stream reads it
            rows.record_stream(torch.cuda.current_stream(self.device))
            if order is not None:
                order.record_stream(torch.cuda.current_stream(self.device))
        if order is not None:
            batch = torch.empty_like(rows)
            batch[order] = rows
            rows = batch
        return rows.float().div_(255)


class _Prefetcher:
    """A thread reading each step's batches one step ahead; its errors reach the loop at the step they hit."""

    _DONE = object()

    def __init__(self, split: StreamedSplit, steps: Iterable[Sequence[torch.Tensor]]):
        self.split, self.steps = split, steps
        self.ready: queue.Queue = queue.Queue(maxsize=PREFETCH_STEPS)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="reprogbench-prefetch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:  # everything, set-up too: an error the loop is not handed would leave it waiting for ever
            if self.split.cuda:  # this thread's current device is the split's (a DDP rank's own GPU), not cuda:0
                torch.cuda.set_device(self.split.device)
            stream = torch.cuda.Stream(self.split.device) if self.split.cuda else None
            buffers: list[torch.Tensor] = []  # pinned, one per batch of a step; reused once its copy is done
            for idxs in self.steps:
                idxs = [i.cpu() for i in idxs]
                if stream is None:
                    item = [self.split._read(i, None) for i in idxs]
                else:
                    _grow(buffers, self.split.images, [len(i) for i in idxs])
                    with torch.cuda.stream(stream):
                        item = [self.split._read(i, b) for i, b in zip(idxs, buffers, strict=False)]
                    stream.synchronize()  # the copies are done: the pinned buffers may be refilled
                if not self._put(item):
                    return
            self._put(self._DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, which raises it
            self._put(exc)

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        while True:
            item = self._next()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _next(self):
        """The next item, or an error if the thread is gone without one (never a wait for ever)."""
        while True:
            try:
                return self.ready.get(timeout=1.0)
            except queue.Empty:
                if not self.thread.is_alive() and self.ready.empty():
                    return RuntimeError("the prefetch thread ended without handing over its batches")

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def _with_index(device: torch.device) -> torch.device:
    """`cuda` as the GPU it means now (`torch.cuda.set_device` in the prefetch thread needs an index): Accelerate's
    single-process device is a bare `cuda`."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _grow(buffers: list[torch.Tensor], images: ImageSet, sizes: list[int]) -> None:
    """At least one pinned buffer per batch, each large enough for its batch."""
    for k, n in enumerate(sizes):
        if k == len(buffers) or len(buffers[k]) < n:
            buffer = torch.empty((n, *images.sample_shape), dtype=torch.uint8, pin_memory=True)
            buffers[k:k + 1] = [buffer]
