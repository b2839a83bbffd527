"""Where training runs: the device, and data parallelism over processes (torchrun) with torch.distributed.

One process (the default) needs nothing. Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the
environment) every process builds the same model from the same seed, draws the same batch order, and
takes its contiguous share of each global batch; DistributedDataParallel averages the gradients
(gloo on CPU, NCCL on GPU). Each rank's loss is scaled so that the averaged gradient is exactly the
one-process gradient of the global batch, whatever the split. Validation is sharded and summed over
ranks, so every rank takes the same early-stopping decision. Rank 0 alone writes checkpoints and logs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import OfaError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """auto: the process's GPU where torch sees one, else the CPU."""
    if device not in DEVICES:
        raise OfaError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise OfaError("--device cuda: torch sees no CUDA device here (this torch build or machine has none)")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def autocast(device: torch.device, precision: str):
    """bf16 autocast where asked for and the device supports it; a no-op context otherwise."""
    if device.type == "cuda":
        enabled = precision == "bf16" and torch.cuda.is_bf16_supported()
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this context started the process group, so it ends it

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, index: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's contiguous part of a global batch, and the factor that makes DDP's averaged gradient
        the global batch's mean: world * len(part) / len(batch). A rank with no part takes one item at 0."""
        part = np.array_split(index, self.world)[self.rank]
        if len(part) == 0:
            return index[:1], 0.0
        return part, self.world * len(part) / len(index)

    def sum(self, values) -> np.ndarray:
        """Element-wise sum over ranks (float64)."""
        arr = np.asarray(values, dtype=np.float64)
        if self.world == 1:
            return arr
        t = torch.from_numpy(arr.copy()).to(self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t)
        return t.cpu().numpy()

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def wrap(self, model):
        """The model DistributedDataParallel-wrapped when there is more than one rank."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def close(self) -> None:
        if self.owns_group:
            torch.distributed.destroy_process_group()
            self.owns_group = False


def setup(device: str = "auto") -> Context:
    """The context of this process: one process, or a rank of a torchrun job (the group is started here)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world <= 1:
        return Context(device=dev)
    owns = False
    if not torch.distributed.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        owns = True
    return Context(rank=rank, world=world, local_rank=local_rank, device=dev, owns_group=owns)
