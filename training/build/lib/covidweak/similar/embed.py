"""Running a trained DuCN on a study's lung slices: 128-d recommendation embeddings, COVID-19 probabilities.

DuCN Sect. 2.2: "all images in the dataset are transferred into a 128-bit representations and
saved as an index database"; a query image is embedded by the same recommendation child.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .inputs import apply_ablation, study_inputs

DEFAULT_BATCH_SIZE = 16
"""Slices per forward pass: small enough for a laptop CPU's memory at 224 x 224, large enough to keep it busy."""


@dataclass
class StudyEmbedding:
    """vectors: (n, 128) float32 unit-norm rows; slice_numbers: (n,) int, the CT file's slice index of each row."""

    vectors: np.ndarray
    slice_numbers: np.ndarray


def _batched(channels: np.ndarray, batch_size: int, device, progress, message: str,
             forward: Callable) -> np.ndarray:
    """Apply ``forward`` (a (b, 3, S, S) tensor -> (b, ...) tensor) to ``channels`` (n, 3, S, S) in batches."""
    import torch

    outputs = []
    total = len(channels)
    if progress is not None:
        progress.update(0, total, message)
    with torch.no_grad():
        for start in range(0, total, batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(channels[start:start + batch_size], dtype=np.float32))
            outputs.append(forward(batch.to(device)).float().cpu().numpy())
            if progress is not None:
                progress.update(min(start + batch_size, total), total, message)
    return np.concatenate(outputs) if outputs else np.zeros((0,), np.float32)


def recommendation_embeddings(model, channels: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE, device="cpu",
                              progress=None) -> np.ndarray:
    """(n, 3, S, S) DuCN inputs -> (n, 128) float32 L2-normalised recommendation-child embeddings."""
    vectors = _batched(channels, batch_size, device, progress, "embedding slices",
                       lambda x: model(recommend=x).recommendation_embedding)
    return vectors.reshape(len(channels), -1).astype(np.float32)


def covid_probabilities(model, channels: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE, device="cpu",
                        progress=None) -> np.ndarray:
    """(n, 3, S, S) DuCN inputs -> (n,) float32 softmax probability of COVID-19 from the detection child."""
    probabilities = _batched(channels, batch_size, device, progress, "detecting",
                             lambda x: model(detect=x).detection_logits.softmax(dim=1)[:, 1])
    return probabilities.reshape(len(channels)).astype(np.float32)


def embed_study(loaded, ct, lungs=None, batch_size: int = DEFAULT_BATCH_SIZE, device="cpu",
                progress=None, slice_number: Optional[int] = None) -> StudyEmbedding:
    """Every lung slice of one CT -> its recommendation embedding.

    loaded: a :class:`covidweak.models.weights.LoadedModel` of method ``ducn`` (its preprocess gives
    the input grid and ``ablation``); ct / lungs: SimpleITK images as for
    :func:`covidweak.similar.inputs.study_inputs`. ``slice_number``: embed only that file slice
    (InputError when it is not a lung slice).
    """
    from ..errors import InputError

    inputs = study_inputs(ct, lungs, loaded.preprocess, progress=progress)
    channels, numbers = inputs.channels, inputs.slice_numbers
    if slice_number is not None:
        rows = np.flatnonzero(numbers == slice_number)
        if rows.size == 0:
            raise InputError(f"slice {slice_number} is not a lung slice of this CT (lung slices: "
                             f"{int(numbers.min())}-{int(numbers.max())}); choose one of those")
        channels, numbers = channels[rows], numbers[rows]
    channels = apply_ablation(channels, loaded.preprocess.get("ablation", "none"))
    vectors = recommendation_embeddings(loaded.model, channels, batch_size, device, progress)
    return StudyEmbedding(vectors, numbers)
