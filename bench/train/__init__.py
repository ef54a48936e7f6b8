"""The Accelerate trainer: a cell, or a pack of cells sharing one frozen backbone -> their result records.

    run_pack(cells, directories, TrainContext(data_root, dependency_dirs, options), observers) -> [CellRecord]

One process, or DDP under `torchrun` (gloo on CPU, NCCL on GPU): `distributed` holds the Accelerator. The loop
(`loop`) sets up (`setup`: data, `models`, resume), trains epoch by epoch (`epoch`), selects on validation and
reads test once (`evaluation`), and writes each cell's record (`results`). What differs between methods is asked
of the method model's hooks (`bench.methods.base.MethodModel`), never of the method's name. Observers of its
events (`events`: the console log; `tracking`: MLflow) are all it knows of who watches.

Fast paths (each measured against the naive path by `reprogbench bench`):
- a frozen backbone has no parameter that requires a gradient: backward computes only input gradients;
- head-only methods (`linear_probe`) train on features computed once instead of once per epoch;
- packed cells (`bench.pack`) share each backbone pass;
- on GPU: bf16 autocast, channels_last, TF32, fused Adam; `compile=True` adds torch.compile, timed apart.

Model selection uses validation accuracy only; the test split is read once, with the chosen weights.
"""
from bench.train.events import Compiled, ConsoleLog, Ended, EpochEnded, Failed, Observer, Started
from bench.train.loop import run_cell, run_pack
from bench.train.options import Diverged, MissingOriginal, TrainContext, TrainOptions
from bench.train.resume import checkpoint_epoch
from bench.train.tracking import MLflowObserver

__all__ = ["Compiled", "ConsoleLog", "Diverged", "Ended", "EpochEnded", "Failed", "MLflowObserver",
           "MissingOriginal", "Observer", "Started", "TrainContext", "TrainOptions", "checkpoint_epoch", "run_cell",
           "run_pack"]
