"""Data-parallel training under ``torchrun``: process group, devices and per-rank batches.

``torchrun --nproc-per-node N -m covidweak train ...`` sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; without them training is one process. NCCL joins GPUs, gloo joins
CPU processes. ``batch_size`` in the config is the global batch: each rank takes
``batch_size / world`` samples, so N processes follow the same trajectory as one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..device import resolve_device
from ..errors import DeviceError, InputError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def start(device_spec: str = "auto"):
    """``(World, torch.device)``; joins the process group when launched by torchrun."""
    import torch
    import torch.distributed as dist

    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), resolve_device(device_spec)
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    wants_gpu = (device_spec or "auto").lower() != "cpu" and torch.cuda.is_available()
    if wants_gpu:
        if world.local_rank >= torch.cuda.device_count():
            raise DeviceError(f"rank {world.rank} needs GPU {world.local_rank} but only "
                              f"{torch.cuda.device_count()} exist: lower --nproc-per-node")
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    else:
        device = resolve_device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if wants_gpu else "gloo", rank=world.rank, world_size=size)
    return world, device


def stop(world: World) -> None:
    import torch.distributed as dist

    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def rank_batch_size(batch_size: int, world: World) -> int:
    if batch_size % world.size:
        raise InputError(f"batch_size {batch_size} does not divide over {world.size} processes: "
                         f"use a multiple of {world.size}")
    return batch_size // world.size


def rank_slice(batch: Any, world: World) -> Any:
    """This rank's share ``[rank::size]`` of every tensor in a ready-made batch."""
    import torch

    if not world.distributed:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch[world.rank::world.size]
    if isinstance(batch, dict):
        return {k: rank_slice(v, world) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(rank_slice(v, world) for v in batch)
    return batch


def barrier(world: World) -> None:
    import torch.distributed as dist

    if world.distributed:
        dist.barrier()


def wrap(model, world: World, device):
    """DistributedDataParallel around ``model`` when there are several ranks."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
