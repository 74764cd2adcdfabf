"""What the case index accepts: study metadata, embedding matrices, slice numbers and k, each refused
with a one-line :class:`~covidweak.errors.InputError` naming the fix before anything is written."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import InputError

REQUIRED_STUDY_KEYS = ("study_id", "patient_id", "diagnosis", "source_path")


def field_text(value, key: str) -> str:
    if isinstance(value, (str, int, np.integer)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise InputError(f"study field {key!r} is a {type(value).__name__}: give a string")


def study_row(study: Mapping, num_slices: int) -> dict:
    """The studies.csv row of ``study``: the required keys as text, other str/number fields as metadata."""
    if not isinstance(study, Mapping):
        raise InputError(f"a study must be a dict with keys {', '.join(REQUIRED_STUDY_KEYS)}, not a {type(study).__name__}")
    missing = [key for key in REQUIRED_STUDY_KEYS if key not in study]
    if missing:
        raise InputError(f"study is missing {', '.join(missing)}: give {', '.join(REQUIRED_STUDY_KEYS)}")
    row = {key: field_text(study[key], key) for key in REQUIRED_STUDY_KEYS}
    if not row["study_id"]:
        raise InputError("study_id is empty: give every study a unique id")
    metadata = {}
    for key, value in study.items():
        if key in REQUIRED_STUDY_KEYS or key == "num_slices":
            continue
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        elif isinstance(value, np.generic):
            value = value.item()
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise InputError(f"study {row['study_id']} field {key!r} is a {type(value).__name__}: "
                             "metadata must be strings or numbers")
        metadata[str(key)] = value
    return dict(row, num_slices=num_slices, metadata=metadata)


def check_matrix(vectors, dim: int, what: str) -> np.ndarray:
    """(n, dim) finite float array with n >= 1, or InputError naming ``what``."""
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2 or vectors.shape[1] != dim or len(vectors) == 0:
        shape = getattr(vectors, "shape", type(vectors).__name__)
        raise InputError(f"{what} has shape {shape}: give an array of shape (n, {dim}) with n >= 1")
    if not np.issubdtype(vectors.dtype, np.floating):
        raise InputError(f"{what} has dtype {vectors.dtype}: give float32 embeddings")
    if not np.isfinite(vectors).all():
        raise InputError(f"{what} holds NaN or infinite values: check the model's output for that study")
    return vectors


def check_slice_numbers(slice_numbers: Sequence[int], count: int, study_id: str) -> np.ndarray:
    numbers = np.asarray(slice_numbers)
    if numbers.shape != (count,) or (count and numbers.dtype.kind not in "iu"):
        raise InputError(f"study {study_id}: slice_numbers must be {count} integers, one per embedding row, "
                         f"got shape {numbers.shape} of {numbers.dtype}")
    if len(np.unique(numbers)) != count:
        raise InputError(f"study {study_id}: slice_numbers repeat a slice: give each slice once")
    return numbers.astype(np.int64)


def check_k(k: int, available: int, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k={k!r}: give a positive whole number")
    if available == 0:
        raise InputError("the case index is empty: add studies with `covidweak index add` first")
    if k > available:
        raise InputError(f"k={k} is larger than the library's {available} {what}: ask for at most {available}")
    return int(k)
