"""The one place that holds the Accelerator: ranks, reductions over them, autocast and the stop agreement.

One process, or DDP under `torchrun` (gloo on CPU, NCCL on GPU). Every collective call (`sum`, `mean`,
`stop_agreed`, ...) must be made by every rank at the same point; with one process each is a no-op.
"""
from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Optional

import torch
from accelerate import Accelerator

from bench import stop


def eval_batch(device: torch.device) -> int:
    """Images per inference batch. On a CPU large batches overflow the caches: smallcnn measured 2,280 img/s
    at 128 and 1,710 at 512 on 2 Xeon cores; a GPU wants large batches."""
    return 512 if device.type == "cuda" else 128


class Distributed:
    """The trainer's view of the process group: this rank, the world, and what is computed over all ranks."""

    def __init__(self):
        self.cuda = torch.cuda.is_available()
        if self.cuda:  # TF32 matmuls/convolutions for whatever still runs in float32
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        threads = torch.get_num_threads()  # the CPUs the launcher found this process was given
        self.accelerator = Accelerator(cpu=not self.cuda, mixed_precision="bf16" if self.cuda else "no")
        # Accelerate resets a multi-process CPU job's threads to the node's physical cores / its local ranks (unless
        # OMP_NUM_THREADS is set): a 1-CPU rank alone on its node ran with 2 threads
        torch.set_num_threads(threads)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def local_rank(self) -> int:
        return self.accelerator.local_process_index

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def mixed_precision(self) -> str:
        return self.accelerator.mixed_precision

    @property
    def eval_batch(self) -> int:
        return eval_batch(self.device)

    def autocast(self):
        return self.accelerator.autocast()

    def prepare(self, *objects):
        return self.accelerator.prepare(*objects)

    def unwrap(self, model):
        return self.accelerator.unwrap_model(model)

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.accelerator.gather(tensor)

    def wait(self) -> None:
        self.accelerator.wait_for_everyone()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Summed over ranks (every rank calls it, also with one process)."""
        return self.accelerator.reduce(tensor, reduction="sum")

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Averaged over ranks; the tensor itself with one process."""
        return self.accelerator.reduce(tensor, reduction="mean") if self.world > 1 else tensor

    def summed_over_ranks(self) -> Optional[Callable[[float], float]]:
        """A lap's energy summed over DDP ranks (each rank meters its own GPU); None for one process."""
        if self.world == 1:
            return None
        return lambda joules: self.sum(torch.tensor([joules], dtype=torch.float64, device=self.device)).item()

    def stop_agreed(self) -> Optional[int]:
        """The signal asking to stop (`bench.stop`) if any rank got one, else None: every rank stops at the same
        epoch boundary."""
        signum = stop.requested()
        if self.world == 1:
            return signum
        asked = self.sum(torch.tensor([float(signum is not None)], device=self.device))
        return (signum or signal.SIGTERM) if asked.item() > 0 else None
