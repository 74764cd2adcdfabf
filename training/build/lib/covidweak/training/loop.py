"""The training loop every task shares (see :mod:`covidweak.training.task` for the contract).

One optimiser update per ``accumulate`` micro-batches (the last, shorter group of an
epoch updates too). Losses are summed on the device and read every ``log_every``
updates, so the loop never waits for the GPU in between. A checkpoint is written after
every epoch's validation; an interrupt (Ctrl-C) leaves the previous one in place.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import CancelledError
from . import distributed
from .checkpoint import make_checkpoint, restore
from .optim import build_optimizer, build_scheduler
from .runs import MetricsLog, RunFolder


@dataclass
class FitResult:
    epochs: int  # epochs completed
    step: int  # optimiser updates done
    best_value: Optional[float]
    best_epoch: Optional[int]
    stopped_early: bool
    history: list[dict] = field(default_factory=list)  # validation metrics per epoch of this session


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def unwrap(model):
    """The plain module inside DistributedDataParallel and torch.compile wrappers."""
    from torch.nn.parallel import DistributedDataParallel

    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model


def to_device(batch: Any, device, channels_last: bool = False) -> Any:
    import torch

    if isinstance(batch, torch.Tensor):
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            return batch.to(device, non_blocking=True, memory_format=torch.channels_last)
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    return batch


def epoch_batches(task, config: dict, epoch: int, world, device):
    """``(iterable of batches, number of batches)`` for this rank.

    A task's Dataset is batched here with a DistributedSampler on one rank or many:
    its permutation depends only on (seed, epoch), and rank r takes every r-th sample
    of it, so the union over ranks of each step's batch is the one-process batch.
    """
    import torch
    from torch.utils.data import DataLoader, Dataset
    from torch.utils.data.distributed import DistributedSampler

    seed = config["seed"]
    source = task.train_batches(config, epoch, seed)
    if not isinstance(source, Dataset):
        batches = list(source)
        return [distributed.rank_slice(b, world) for b in batches], len(batches)
    sampler = DistributedSampler(source, num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    loader = DataLoader(source, batch_size=distributed.rank_batch_size(config["batch_size"], world), sampler=sampler,
                        num_workers=config["num_workers"], pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return loader, len(loader)


def autocast(config: dict, device):
    import torch

    if config["amp"] == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def build_model_and_optimizer(task, config: dict, device):
    """The task's network on ``device``, initialised from ``config["seed"]``, and its optimiser."""
    import torch

    seed_everything(config["seed"])
    model = task.build_model(config).to(device)
    if config["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    groups = task.parameter_groups(model, config) if hasattr(task, "parameter_groups") else model.parameters()
    return model, build_optimizer(groups, config["optim"])


def train_step(task, model, batch, config: dict, device, accumulate: int = 1) -> dict:
    """Forward (under the config's autocast) and backward of one micro-batch; the task's outputs.

    The loss is divided by ``accumulate`` so that the gradients summed over a group of
    micro-batches are their mean. The optimiser update is the caller's.
    """
    batch = to_device(batch, device, config["channels_last"])
    with autocast(config, device):
        outputs = task.training_step(model, batch, config, device)
    (outputs["loss"] / accumulate).backward()
    return outputs


def _improved(value: float, best: Optional[float], higher_is_better: bool) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if higher_is_better else value < best


class _Window:
    """Scalars summed on the device between two reads."""

    def __init__(self):
        self.sums: dict[str, Any] = {}
        self.count = 0

    def add(self, values: dict) -> None:
        import torch

        for name, value in values.items():
            value = value.detach().float() if isinstance(value, torch.Tensor) else torch.tensor(float(value))
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += 1

    def read(self) -> dict[str, float]:
        import torch

        if not self.count:
            return {}
        names = list(self.sums)
        values = torch.stack([self.sums[n].reshape(()).cpu() for n in names]).tolist()  # the one sync
        means = {n: v / self.count for n, v in zip(names, values)}
        self.sums, self.count = {}, 0
        return means


def fit(task, config: dict, folder: RunFolder, device, world=None, resume_from: Optional[dict] = None,
        progress=None) -> FitResult:
    """Train ``task`` (already :meth:`prepare`-d) for ``config``; checkpoints go to ``folder``."""
    import torch

    world = world or distributed.World()
    model, optimizer = build_model_and_optimizer(task, config, device)

    position = {"epoch": 0, "step": 0, "batches": 0}
    selection = {"best_value": None, "best_epoch": None, "stale_epochs": 0}
    _, n_batches = epoch_batches(task, config, 0, world, device)
    updates_per_epoch = math.ceil(n_batches / config["accumulate"])
    total_updates = config["max_steps"] or config["epochs"] * updates_per_epoch
    scheduler = build_scheduler(optimizer, config["schedule"], total_updates, updates_per_epoch)
    if resume_from is not None:
        restore(resume_from, model, optimizer, scheduler)
        position.update(resume_from["position"])
        selection.update(resume_from["selection"])

    train_model = distributed.wrap(torch.compile(model) if config["compile"] else model, world, device)
    log = MetricsLog(folder, resume_step=position["step"] if resume_from else None) if world.is_main else None
    result = FitResult(position["epoch"], position["step"], selection["best_value"], selection["best_epoch"], False)
    try:
        while position["epoch"] < config["epochs"] and position["step"] < total_updates and not result.stopped_early:
            epoch = position["epoch"]
            started = time.perf_counter()
            train_scalars = _train_epoch(task, config, train_model, optimizer, scheduler, position, world, device,
                                         log, total_updates, progress)
            model.eval()
            with torch.no_grad():
                metrics = task.validate(model, config, device)
            model.train()
            position["epoch"] = epoch + 1
            value = float(metrics[task.selection_metric])
            is_best = _improved(value, selection["best_value"], task.higher_is_better)
            if is_best:
                selection.update(best_value=value, best_epoch=epoch + 1, stale_epochs=0)
            else:
                selection["stale_epochs"] += 1
            patience = config["early_stopping"]["patience"]
            result.stopped_early = patience is not None and selection["stale_epochs"] >= patience
            result.history.append(dict(metrics))
            if world.is_main:
                log.log(position["step"], epoch + 1, "val", metrics)
                payload = make_checkpoint(task.name, model, optimizer, scheduler, config, position, selection)
                folder.save_checkpoint(payload, epoch + 1, config["keep_last"], is_best)
                shown = ", ".join(f"{k} {v:.4g}" for k, v in {**train_scalars, **metrics}.items())
                print(f"epoch {epoch + 1}/{config['epochs']}: {shown}{' (best)' if is_best else ''} "
                      f"[{time.perf_counter() - started:.1f} s]", flush=True)
            distributed.barrier(world)
    except KeyboardInterrupt:
        raise CancelledError(f"interrupted; {folder.last} (epoch {position['epoch']}) is intact: "
                             f"continue with --resume") from None
    finally:
        if log is not None:
            log.close()
    result.epochs, result.step = position["epoch"], position["step"]
    result.best_value, result.best_epoch = selection["best_value"], selection["best_epoch"]
    return result


def _train_epoch(task, config, model, optimizer, scheduler, position, world, device, log, total_updates,
                 progress) -> dict[str, float]:
    """One pass over the epoch's batches; returns the epoch's mean training scalars."""
    accumulate, log_every = config["accumulate"], config["log_every"]
    epoch = position["epoch"]
    batches, n_batches = epoch_batches(task, config, epoch, world, device)
    window, epoch_window = _Window(), _Window()
    model.train()
    optimizer.zero_grad(set_to_none=True)
    for index, batch in enumerate(batches):
        updates = (index + 1) % accumulate == 0 or index + 1 == n_batches
        # Gradients of the micro-batches before an update stay local: one all-reduce per update.
        sync = contextlib.nullcontext() if updates or not world.distributed else model.no_sync()
        with sync:
            outputs = train_step(task, model, batch, config, device, accumulate)
        window.add(outputs)
        epoch_window.add({"loss": outputs["loss"]})
        position["batches"] += 1
        if progress is not None:
            progress.update(index + 1, n_batches, f"epoch {epoch + 1}")
        if not updates:
            continue
        lr = scheduler.get_last_lr()[0]
        if config["optim"]["clip_norm"] is not None:
            # A noisy-OR slice score sums softplus over thousands of pixels: one negative slice
            # with a few confident pixels gives a loss (and gradient) tens of times the usual one.
            from torch.nn.utils import clip_grad_norm_

            clip_grad_norm_(model.parameters(), float(config["optim"]["clip_norm"]))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        position["step"] += 1
        if position["step"] % log_every == 0 and log is not None:
            log.log(position["step"], epoch + 1, "train", {**window.read(), "lr": lr})
        if position["step"] >= total_updates:
            break
    if window.count and log is not None:
        log.log(position["step"], epoch + 1, "train", {**window.read(), "lr": scheduler.get_last_lr()[0]})
    return epoch_window.read()
