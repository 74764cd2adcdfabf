"""The one place that turns ``--device auto|cpu|cuda[:N]`` into a torch device."""

from __future__ import annotations

import re

from .errors import DeviceError, InputError

DEVICE_CHOICES_HELP = "auto (GPU when present, else CPU), cpu, cuda or cuda:N"
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
MODULE_DEVICES = ("auto", "cpu", "cuda")
"""The device choices of the Slicer modules' panels; the CLI also takes cuda:N."""


def check_module_device(device: str) -> None:
    """InputError naming the choices unless ``device`` is one of :data:`MODULE_DEVICES`."""
    if device not in MODULE_DEVICES:
        raise InputError(f"device '{device}' is not one of {', '.join(MODULE_DEVICES)}: choose one of them")


def resolve_device(spec: str = "auto"):
    """Return the ``torch.device`` for a user's device string.

    ``auto`` picks ``cuda`` when a CUDA GPU is visible and ``cpu`` otherwise.
    Raises :class:`DeviceError` for a malformed string or a GPU that is absent,
    instead of failing later inside a kernel launch.
    """
    import torch

    spec = (spec or "auto").strip().lower()
    if not _DEVICE_PATTERN.match(spec):
        raise DeviceError(f"unknown device '{spec}': use {DEVICE_CHOICES_HELP}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"device '{spec}' requested but no CUDA GPU is visible: use --device cpu or auto")
    device = torch.device(spec)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise DeviceError(f"device '{spec}' requested but only {count} GPU(s) exist: use cuda:0..cuda:{count - 1}")
    return device


def add_device_argument(parser) -> None:
    """Add the shared ``--device`` option to an argparse (sub)parser."""
    parser.add_argument("--device", default="auto", help=f"compute device: {DEVICE_CHOICES_HELP} (default: auto)")
