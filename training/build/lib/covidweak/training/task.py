"""What a trainable task provides to the generic training loop.

The loop (:mod:`covidweak.training.loop`) owns everything around a model: device,
bf16 autocast, gradient accumulation, the optimiser and schedule from the config,
checkpoints, resume, metrics, model selection and export. A task owns only what is
specific to its paper: the network, the data, one step's loss and the validation metric.

Contract details the loop relies on:

* ``defaults`` (a dict attribute, or a method returning one) is
  ``{"model": {...}, "params": {...}, "preprocess": {...}}``: every key a config may set
  in those three sections, with its default value. Config files and ``--set`` are
  checked against it: an unknown key or a value of another type is refused
  (see :mod:`covidweak.training.config`). Use ``None`` for "any value".
* ``train_batches`` returns either a sized iterable of ready batches (a list), or a
  ``torch.utils.data.Dataset``. For a Dataset the loop builds the DataLoader itself:
  ``batch_size`` and ``num_workers`` from the config, pinned memory on CUDA, a
  ``DistributedSampler`` shuffled by (seed, epoch) -- one rank or many. A list's
  batches are used in the given order; under torchrun each rank takes its slice
  ``[rank::world]`` of every tensor's first dimension.
* ``training_step`` gets the batch already on ``device`` (tensors anywhere inside
  tuples, lists or dicts are moved; 4-D float tensors are channels_last when the
  config asks). ``model`` may be wrapped (DistributedDataParallel, torch.compile):
  call it, and reach attributes through :func:`covidweak.training.loop.unwrap`.
  Scalars besides ``"loss"`` are logged as they are (tensors, read every ``log_every``
  steps so the loop never waits for the device).
* ``validate`` runs under ``torch.no_grad()`` with the model in eval mode; every rank
  calls it with the unwrapped model, only rank 0 records the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Protocol

from ..records import StudyRecord


@dataclass
class TaskData:
    """A task's studies, split by patient (``train`` / ``val`` / ``test``)."""

    splits: dict[str, list[StudyRecord]]
    root: Any = None  # the data folder or manifest the records came from
    extra: dict = field(default_factory=dict)


@dataclass
class ExportSpec:
    """What goes into a weight file besides the state dict (see :mod:`covidweak.models.weights`)."""

    method: str
    arch: dict
    preprocess: dict


class Task(Protocol):
    name: str
    selection_metric: str  # key of validate()'s dict that picks the best checkpoint
    higher_is_better: bool
    defaults: dict  # or a method returning it: {"model": {...}, "params": {...}, "preprocess": {...}}

    def build_model(self, config: dict):
        """A freshly initialised ``torch.nn.Module`` for this config."""

    def prepare(self, data: TaskData, config: dict) -> None:
        """Load or cache what the loaders need (called once before training)."""

    def train_batches(self, config: dict, epoch: int, seed: int) -> Iterable[Any]:
        """The epoch's batches (a list), in an order fixed by (seed, epoch) so a resumed run sees the
        same data; or a torch Dataset the loop batches and shuffles itself."""

    def training_step(self, model, batch: Any, config: dict, device) -> dict[str, Any]:
        """Forward one batch; return tensors, at least ``"loss"`` (a scalar to backpropagate)."""

    def validate(self, model, config: dict, device) -> dict[str, float]:
        """Validation metrics on the ``val`` split, including ``selection_metric``."""

    def export_spec(self, config: dict, metrics: Optional[dict] = None) -> ExportSpec:
        """How to rebuild the network and prepare its input at inference. ``metrics``: the logged
        metrics of the exported epoch, for an ``arch`` field chosen on validation (diagnosis's top_k)."""
