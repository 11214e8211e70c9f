"""Data-parallel training with `torchrun` (DDP): nothing home-made.

`torchrun --nproc_per_node N -m train.cli fit ...` sets WORLD_SIZE, RANK and LOCAL_RANK;
each process then trains on its share of every epoch (DistributedSampler), gradients
are averaged by DistributedDataParallel, and only rank 0 writes checkpoints, logs and
the export. Without WORLD_SIZE (or with 1) this is a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Context:
    """This process's place: rank, world size and the device it trains on."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def start(device: str) -> Context:
    """Join the process group when torchrun started us; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context(0, 1, torch.device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank)
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return Context(
        torch.distributed.get_rank(),
        world_size,
        torch.device(f"cuda:{local_rank}" if cuda else "cpu"),
    )


def barrier(context: Context) -> None:
    if context.distributed:
        torch.distributed.barrier()


def stop(context: Context) -> None:
    if context.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def mean_across(context: Context, value: float, count: int) -> float:
    """The count-weighted mean of a per-process value over every process."""
    if not context.distributed:
        return value
    totals = torch.tensor([value * count, float(count)], dtype=torch.float64)
    torch.distributed.all_reduce(totals)
    return float(totals[0] / max(totals[1], 1.0))
