"""The streamed data path (`bench.train.stream`) against the device-resident one, and what the decoded-image cache
(`bench.data.cache`) saves after the first epoch.

`stream`: one `ar` cell trained in this process with its images on the device whole, and streamed from host
memory a batch at a time (the next batch gathered during the current step), alternately, REPEATS times each; the
same seed gives the same losses.
`decode`: JPEG files of varying size (written here, as a photo dataset has them) decoded into the cache by the
first load, mapped by every later one; with one epoch of batches read from the cache, the first epoch's cost
against a later epoch's.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.data.decode import materialise
from bench.data.types import ImageFiles
from bench.speed import Measurement, Settings
from bench.speed.steps import load_note
from bench.speed.trainer_runs import _deps, _timed, big_task, make_grid, measured

DECODE_SIZE = 64  # decoded at it: a small backbone's input
BATCH = 128
REPEATS = 3  # runs of each data path in the `stream` measurement


def streamed_vs_device(settings: Settings) -> Measurement:
    from bench.train import TrainContext, TrainOptions, run_cell

    task, epochs = big_task(), 1 if settings.quick else 3
    grid, results = make_grid(settings, "stream", [task], epochs=epochs, seeds=[0],
                              max_train=5_000 if settings.quick else 20_000)
    [cell] = measured(grid)
    runs: dict[str, list] = {"device": [], "stream": []}
    for repeat in range(REPEATS):  # alternated, the best of each kept: a busy shared machine slows one run at random
        for path in runs:
            context = TrainContext(dependency_dirs=_deps(cell, results), options=TrainOptions(data_path=path))
            rec, wall = _timed(run_cell, cell, Path(settings.workdir) / "stream" / f"{path}{repeat}", context)
            runs[path].append((rec, wall))
    rows, records = [], {}
    for path, done in runs.items():
        rec, wall = max(done, key=lambda run: run[0].throughput.images_per_s)
        records[path] = rec
        rows.append({"data path": rec.environment.data_path, "train images/s": rec.throughput.images_per_s,
                     "train s": rec.timing.train_s, "eval s": rec.timing.eval_s, "wall s": wall,
                     "test acc %": rec.metrics.test_acc,
                     "all runs images/s": " ".join(f"{r.throughput.images_per_s:.0f}" for r, _ in done)})
    same = [r.train_loss for r in records["stream"].history] == [r.train_loss for r in records["device"].history]
    device, streamed = rows
    return Measurement(
        name="data path: images streamed a batch at a time vs on the device whole (one ar cell)", rows=rows,
        ratio=streamed["train images/s"] / device["train images/s"], ratio_label="train images/s streamed / device",
        notes=[f"{task}, {records['device'].throughput.train_images // epochs} train images, smallcnn original, "
               f"ar at 16px, batch 128, {epochs} epoch(s), {settings.device.type}; best of {REPEATS} alternated runs "
               f"each; identical train losses: {same}",
               load_note()])


def _write_jpegs(folder: Path, n: int) -> ImageFiles:
    """n JPEGs of 80..127 px a side, noise with a class's brightness (4 classes), as an encoded loader lists them."""
    rng = np.random.default_rng(0)
    files = []
    for k in range(n):
        name = f"{k % 4}/{k:06d}.jpg"
        if not (folder / name).is_file():
            side = int(rng.integers(80, 128))
            pixels = (rng.integers(0, 64, size=(side, side, 3)) + 60 * (k % 4)).astype(np.uint8)
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / name, quality=90)
        files.append(name)
    return ImageFiles(folder, files, torch.arange(n) % 4, cache_key="speed-decode")


def _epoch_s(images, device: torch.device) -> float:
    """One epoch of shuffled batches from the streamed split, as the trainer reads them; -> seconds."""
    from bench.train.stream import StreamedSplit

    split = StreamedSplit(images, device)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    steps = [[order[s:s + BATCH]] for s in range(0, len(order), BATCH)]
    start = time.perf_counter()
    for [x] in split.batches(steps):
        x.sum().item()  # the batch is used on the device
    return time.perf_counter() - start


def decode_first_epoch(settings: Settings, n: int | None = None) -> Measurement:
    n = n or (2_000 if settings.quick else 10_000)
    folder = Path(settings.workdir) / "decode"
    files = _write_jpegs(folder / "jpegs", n)
    cache = folder / f"cache{time.time_ns()}"  # a fresh cache: the first load decodes
    first, first_s = _timed(materialise, files, DECODE_SIZE, cache)
    first_epoch = _epoch_s(first, settings.device)
    later, later_s = _timed(materialise, files, DECODE_SIZE, cache)
    later_epoch = _epoch_s(later, settings.device)
    rows = [{"epoch": "first: decode into the cache, then the batches", "load s": first_s,
             "batches s": first_epoch, "images/s": n / (first_s + first_epoch)},
            {"epoch": "later: map the cache, then the batches", "load s": later_s,
             "batches s": later_epoch, "images/s": n / (later_s + later_epoch)}]
    return Measurement(
        name="decoded-image cache: the first epoch (decodes) vs a later one (maps the cache)", rows=rows,
        ratio=(first_s + first_epoch) / (later_s + later_epoch), ratio_label="seconds first epoch / later epoch",
        notes=[f"{n} JPEGs of 80-127 px decoded to {DECODE_SIZE}x{DECODE_SIZE} RGB "
               f"({n * 3 * DECODE_SIZE ** 2 / 2**20:.0f} MiB cached); batches of {BATCH} streamed to "
               f"{settings.device.type} in a shuffled order, no model; the cache was just written, so its pages are "
               "in the page cache (a cold disk reads slower)", load_note()])
