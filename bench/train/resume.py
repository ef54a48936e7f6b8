"""A member's checkpoint (`bench.checkpoint`): saved after every epoch, loaded on resume; the dict stays as it
was (cell_id, epoch, learned, optimizer, rng, history, best, clock)."""
from __future__ import annotations

from pathlib import Path

import torch

from bench import checkpoint
from bench.checkpoint import CorruptCheckpoint
from bench.files import CHECKPOINT
from bench.train.members import Clock, Member


def resume(member: Member) -> None:
    """Load the member's newest good checkpoint; a corrupt one is reported and skipped."""
    def same_cell(state: dict) -> None:
        if state.get("cell_id") != member.cell.cell_id:
            raise CorruptCheckpoint(f"{CHECKPOINT} belongs to cell {state.get('cell_id')}, not {member.cell.cell_id}")

    # loaded on the CPU: load_state_dict copies onto the parameters' device. A DDP rank on CPU saves storages
    # tagged `cpu:0`, which torch cannot map to a device given as map_location (the resume restarted from scratch)
    loaded = checkpoint.load(member.directory, map_location="cpu", check=same_cell)
    member.checkpoint_problems = loaded.problems
    ckpt = loaded.state
    if ckpt is None:
        return
    member.learned.load_state_dict(ckpt["learned"])
    member.optimizer.load_state_dict(ckpt["optimizer"])
    member.history, member.best, member.start_epoch = ckpt["history"], ckpt["best"], ckpt["epoch"]
    member.clock = Clock(**ckpt["clock"])
    member.resumed_from = member.start_epoch
    member.rng = ckpt["rng"]
    member.threads_before = ckpt.get("torch_threads")


def save_epoch(member: Member, epoch: int) -> None:
    """The member's checkpoint after `epoch` (0-based) finished."""
    m = member
    checkpoint.save(m.directory, {
        "cell_id": m.cell.cell_id, "epoch": epoch + 1, "learned": m.learned.state_dict(),
        "optimizer": m.optimizer.state_dict(), "rng": torch.get_rng_state(), "history": m.history,
        "best": m.best, "clock": m.clock.state(), "torch_threads": torch.get_num_threads(),
    })


def checkpoint_epoch(directory: Path) -> int:
    """The epoch a cell would resume from (0: none; a corrupt checkpoint is skipped as `resume` skips it):
    cells pack only with cells at the same epoch."""
    return checkpoint.good_epoch(Path(directory))
