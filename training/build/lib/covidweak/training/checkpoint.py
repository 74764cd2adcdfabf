"""Training checkpoints: everything a run needs to continue bit-for-bit, written atomically.

A checkpoint is a ``torch.save`` dict of plain types and tensors, so it loads with
``weights_only=True``: model, optimiser and scheduler state, the RNG states of python,
numpy, torch and CUDA, the position (epochs done, optimiser updates, micro-batches),
model-selection state and the config. Writes go to a temporary file in the same folder,
are fsynced and renamed over the target: a crash or SIGKILL mid-save leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.atomic import replacing

FORMAT = "covidweak-checkpoint"
FORMAT_VERSION = 1


def rng_state() -> dict:
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": _to_lists(random.getstate()),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_lists(v) for v in value]
    return value


def atomic_save(payload: Any, path: Path) -> None:
    """``torch.save`` to ``path`` so that it holds either the old or the new content, never half."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, durable=True) as temp:
        torch.save(payload, temp)


def make_checkpoint(task_name: str, model, optimizer, scheduler, config: dict, position: dict,
                    selection: dict) -> dict:
    """The checkpoint dict; ``position``: epoch (epochs done), step (updates), batches (micro-batches)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": task_name,
        "position": dict(position),
        "selection": dict(selection),
        "config": config,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
    }


def load_checkpoint(path: Path, task_name: str) -> dict:
    """Read a checkpoint written for ``task_name``; InputError for a damaged or foreign file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} not found; train first or point to a run folder with checkpoints/")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated zip or pickle raises any of several types
        raise InputError(f"checkpoint {path} is damaged ({type(error).__name__}); use an epoch-NNN.pt beside it") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path} is not a covidweak training checkpoint; give a file from a run's checkpoints/")
    if payload.get("format_version") != FORMAT_VERSION:
        raise InputError(f"checkpoint {path} has format {payload.get('format_version')}, this covidweak reads "
                         f"{FORMAT_VERSION}; resume it with the version that wrote it")
    if payload["task"] != task_name:
        raise InputError(f"checkpoint {path} was trained for task '{payload['task']}', not '{task_name}'; "
                         f"resume with task '{payload['task']}' or start a new run folder")
    return payload


def restore(payload: dict, model, optimizer, scheduler) -> None:
    """Load a checkpoint's states into freshly built objects and restore the RNGs last."""
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    set_rng_state(payload["rng"])
