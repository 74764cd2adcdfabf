"""What a trainable task provides to the generic training loop.

The loop (:mod:`covidweak.training.loop`) owns everything around a model: device,
bf16 autocast, gradient accumulation, the optimiser and schedule from the config,
checkpoints, resume, metrics, model selection and export. A task owns only what is
specific to its paper: the network, the data, one step's loss and the validation metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

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

    def build_model(self, config: dict):
        """A freshly initialised ``torch.nn.Module`` for this config."""

    def prepare(self, data: TaskData, config: dict) -> None:
        """Load or cache what the loaders need (called once before training)."""

    def train_batches(self, config: dict, epoch: int, seed: int) -> Iterable[Any]:
        """The epoch's batches, in an order fixed by (seed, epoch) so a resumed run sees the same data."""

    def training_step(self, model, batch: Any, config: dict, device) -> dict[str, Any]:
        """Forward one batch; return tensors, at least ``"loss"`` (a scalar to backpropagate)."""

    def validate(self, model, config: dict, device) -> dict[str, float]:
        """Validation metrics on the ``val`` split, including ``selection_metric``."""

    def export_spec(self, config: dict) -> ExportSpec:
        """How to rebuild the network and prepare its input at inference."""
