"""The optimiser and learning-rate schedule a config names.

Schedules are functions of the optimiser update count, so they resume exactly
with the scheduler's state dict:

* ``constant``;
* ``linear``: decays to 0 over all updates (M-SEAM-NAM: lr 1e-3 "with linear decay");
* ``step``: multiplies by ``gamma`` every ``step_epochs`` epochs (DuCN halves every 20 epochs);
* ``poly``: ``(1 - t / T) ** power``, the usual CAM/SEAM schedule.
"""

from __future__ import annotations


def build_optimizer(parameters, optim: dict):
    import torch

    name, lr, decay = optim["name"], optim["lr"], optim["weight_decay"]
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=optim["momentum"], weight_decay=decay)
    betas = tuple(optim["betas"])
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, betas=betas, weight_decay=decay)
    return torch.optim.AdamW(parameters, lr=lr, betas=betas, weight_decay=decay)


def lr_factor(schedule: dict, total_updates: int, updates_per_epoch: int):
    """update index -> multiplier of the base learning rate."""
    name = schedule["name"]
    total = max(total_updates, 1)
    if name == "linear":
        return lambda t: max(0.0, 1.0 - t / total)
    if name == "poly":
        return lambda t: max(0.0, 1.0 - t / total) ** schedule["power"]
    if name == "step":
        every = max(updates_per_epoch, 1) * schedule["step_epochs"]
        return lambda t: schedule["gamma"] ** (t // every)
    return lambda t: 1.0


def build_scheduler(optimizer, schedule: dict, total_updates: int, updates_per_epoch: int):
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(schedule, total_updates, updates_per_epoch))
