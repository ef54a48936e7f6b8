"""One training epoch of a pack: each member on its own batch order, all through one backbone pass per step.

Data is batched by index with a permutation seeded by (seed, epoch), so an interrupted cell resumes on exactly the
batches it would have seen; the split gives the batches, from the device or streamed (`bench.train.stream`). The
global batch is split across ranks and the loss is scaled so DDP's gradient average equals the single-process
gradient. How a step's logits and gradients come about is the method model's (`MethodModel.step_outputs`,
`step_backward`).
"""
from __future__ import annotations

from contextlib import closing

import torch
import torch.nn.functional as F

from bench.methods.base import Step, batch_counts
from bench.train.batch_progress import BatchProgress
from bench.train.distributed import Distributed
from bench.train.evaluation import Split
from bench.train.members import Member
from bench.train.options import Diverged
from bench.train.stream import StreamedSplit


def epoch_order(seed: int, epoch: int, n: int, device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def train_epoch(pack, members: list[Member], data: Split | StreamedSplit, epoch: int,
                dist: Distributed) -> list[tuple[float, float, int]]:
    """-> per member (mean train loss, train accuracy in %, images seen), over all ranks."""
    pack.train()
    leader = members[0].model  # a pack's models are of one method: it decides how the pack steps
    n, batch, world = len(data.labels), members[0].hp["batch_size"], dist.world
    orders = [epoch_order(m.cell.seed, epoch, n, data.index_device) for m in members]
    totals = torch.zeros(len(members), 3, device=dist.device, dtype=torch.float64)
    # a rank with no samples would break BatchNorm: a last sliver smaller than the world is dropped
    starts = [(index, start) for index, start in enumerate(range(0, n, batch)) if min(batch, n - start) >= world]
    steps = [[order[start:start + batch][dist.rank::world] for order in orders] for _, start in starts]
    progress = BatchProgress(members[0].cell.name, epoch, len(starts), dist.rank)
    with closing(data.batches(steps)) as batches, closing(progress):  # closed at once on Diverged: a streamed
        # reader stops, the batch bar goes
        for (index, start), local, xs in zip(starts, steps, batches, strict=True):
            size = min(batch, n - start)
            ys = [data.labels_of(idx) for idx in local]
            step = Step(epoch, index, ys, [m.cell.seed for m in members], world / size, dist.autocast, dist.mean)
            outputs = leader.step_outputs(pack, xs, step)
            outputs = [m.model.restrict(logits.float(), y) for m, logits, y in zip(members, outputs, ys, strict=True)]
            ce_sums = [F.cross_entropy(logits, y, reduction="sum") for logits, y in zip(outputs, ys, strict=True)]
            # scaled so that DDP's mean over ranks gives the mean over the global batch
            losses = [ce * step.scale + m.model.regularizer() for ce, m in zip(ce_sums, members, strict=True)]
            check_finite(losses, members, epoch, index, dist)
            leader.step_backward(sum(losses), dist.backward)
            for m in members:
                m.optimizer.step()
                m.optimizer.zero_grad(set_to_none=True)
            for j, (ce, logits, y) in enumerate(zip(ce_sums, outputs, ys, strict=True)):
                totals[j] += batch_counts(ce.detach(), logits, y)
            progress.step(index + 1)
    rows = dist.sum(totals).tolist()
    return [(loss / count, 100.0 * correct / count, int(count)) for loss, correct, count in rows]


def check_finite(losses: list[torch.Tensor], members: list[Member], epoch: int, index: int,
                 dist: Distributed) -> None:
    """Raise `Diverged` for the first member whose loss (averaged over ranks) is NaN or infinite."""
    check = dist.mean(torch.stack([loss.detach() for loss in losses]))
    finite = torch.isfinite(check)
    if not finite.all():
        bad = int((~finite).nonzero()[0])
        raise Diverged(f"cell {members[bad].cell.cell_id} diverged at epoch {epoch + 1}, step {index}: "
                       f"loss {check[bad].item()}; try a lower lr", members[bad].cell.cell_id)


def compile_warmup(pack, members: list[Member], data: Split | StreamedSplit, dist: Distributed) -> None:
    """One forward + backward on a first batch, no optimizer step: torch.compile compiles here, timed apart.

    The RNG state is restored so that compiling changes nothing the cell would have drawn.
    """
    rng = torch.get_rng_state()
    pack.train()
    idx = torch.arange(min(members[0].hp["batch_size"], len(data.labels)), device=data.index_device)
    with dist.autocast():
        outputs = pack([data.batch(idx)] * len(members))
    dist.backward(sum(out.float().sum() for out in outputs))
    for m in members:
        m.optimizer.zero_grad(set_to_none=True)
    torch.set_rng_state(rng)
