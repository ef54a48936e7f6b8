"""Packed cells: several cells that share one frozen backbone train in a single backbone pass.

A small `ar` cell leaves a GPU idle: its program is a few thousand numbers and its batch is small. Cells that
differ only in what each one learns (seed, λ, label mapping, learning rate, ...) and in nothing the backbone
sees (the same original, task, split, batch size and epochs) are packed: each cell encodes its own batch with
its own program, the encoded batches are concatenated along the batch dimension for ONE frozen forward (and
one backward for the input gradients), and the output is split back to each cell's decode. Each cell keeps
its own optimizer, batches, checkpoint and record, so a packed cell gives the result it gives alone.

The frozen backbone runs in eval mode (BatchNorm uses running statistics), so each sample's output does not
depend on the other samples in the pass; that is what makes packing exact up to float rounding.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from bench.grid import Cell
from bench.methods import METHODS, FrozenBackboneModel, MethodModel


def is_packable(model: MethodModel) -> bool:
    return isinstance(model, FrozenBackboneModel)


def pack_key(cell: Cell) -> Optional[str]:
    """Cells with equal keys can share a backbone pass; None for methods that train a whole network or own
    their update (`Method.packs` False: finetune, blackbox).

    What the backbone sees must match: the method and what its frozen part computes for the cell
    (`Method.frozen_output`), the backbone and its input size, the original model, the task and split, and the
    batch size and epoch count (the step count).
    """
    method = METHODS.get(cell.method)
    if not method.uses_original or not method.packs:
        return None
    spec = cell.spec
    hp = spec["hparams"]
    return repr((cell.grid, cell.method, method.frozen_output(spec["method"]), spec["backbone"], spec["original"],
                 spec["task"], spec["split"], hp["batch_size"], hp["epochs"]))


class Pack(nn.Module):
    """K cells' models -> one module: a list of K batches in, a list of K logits out.

    Modes: `features` (inputs are cached frozen outputs: only decode runs), `shared` (one frozen pass for
    all K), `separate` (whole-network methods, always K == 1).
    """

    def __init__(self, models: list[MethodModel], from_features: bool = False, channels_last: bool = False,
                 chunk: Optional[int] = None):
        super().__init__()
        self.members = nn.ModuleList(models)
        shared = all(is_packable(m) for m in models)
        if len(models) > 1:
            if not shared:
                raise ValueError("only frozen-backbone methods can be packed")
            if any(m.backbone is not models[0].backbone for m in models):
                raise ValueError("packed cells must share one backbone object")
        if from_features and not all(getattr(m, "caches_features", False) for m in models):
            raise ValueError("cached features need a method whose input function learns nothing")
        self.mode = "features" if from_features else "shared" if shared else "separate"
        self.channels_last = channels_last
        # the shared pass runs in chunks of this many images (None: all at once). A CPU slows down on batches
        # that overflow its caches, so there a pack saves the per-step overhead without growing the batch.
        self.chunk = chunk

    @property
    def frozen(self):
        """The shared frozen computation (the first member's: all members share its backbone)."""
        return self.members[0].frozen

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        members = list(self.members)
        if self.mode == "features":
            return [m.decode(x) for m, x in zip(members, xs, strict=True)]
        if self.mode == "separate":
            return [m(x) for m, x in zip(members, xs, strict=True)]
        encoded = [m.encode(x) for m, x in zip(members, xs, strict=True)]
        sizes = [len(e) for e in encoded]
        batch = torch.cat(encoded) if len(encoded) > 1 else encoded[0]
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        if getattr(members[0], "caches_features", False):
            with torch.no_grad():  # nothing upstream of decode learns (the naive, uncached path)
                hidden = self._frozen_pass(batch)
        else:
            hidden = self._frozen_pass(batch)
        return [m.decode(h) for m, h in zip(members, hidden.split(sizes), strict=True)]


    def _frozen_pass(self, batch: torch.Tensor) -> torch.Tensor:
        if self.chunk is None or len(batch) <= self.chunk:
            return self.frozen(batch)
        return torch.cat([self.frozen(part) for part in batch.split(self.chunk)])


def compute_features(pack: Pack, data, batch_size: int, autocast, rank: int = 0, world: int = 1,
                     gather=None) -> torch.Tensor:
    """frozen(encode(x)) for every image of `data` (a `Split` or `StreamedSplit` of images), once, in inference
    mode; -> float32 (N, D) on the training device.

    Under DDP each rank computes a contiguous share and `gather` (accelerator.gather) joins the shares, so
    every rank ends with all N rows, in order.
    """
    member = pack.members[0]
    n = len(data.labels)
    share = -(-n // world)  # ceil: equal shares so gather sees equal shapes; the last one is padded
    lo, hi = min(rank * share, n), min((rank + 1) * share, n)
    steps = [[torch.arange(start, min(start + batch_size, hi), device=data.index_device)]
             for start in range(lo, hi, batch_size)]
    chunks = []
    with torch.inference_mode():
        for [x] in data.batches(steps):
            with autocast():
                chunks.append(member.frozen(member.encode(x)).float())
    dim = chunks[0].shape[1] if chunks else _feature_dim(member, data)
    mine = torch.cat(chunks) if chunks else data.labels.new_zeros((0, dim), dtype=torch.float32)
    if world == 1:
        return mine.clone()  # out of inference mode: autograd may use it as a leaf input
    padded = torch.zeros((share, dim), device=mine.device, dtype=mine.dtype)
    padded[: len(mine)] = mine
    return gather(padded)[:n].clone()


def _feature_dim(member, data) -> int:
    with torch.inference_mode():
        return member.frozen(member.encode(data.batch(torch.arange(1, device=data.index_device)))).shape[1]
