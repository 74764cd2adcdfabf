"""The labelled CT slices of one study that FeCNN learns from and is scored on (Wu et al.).

Training (:mod:`covidweak.training.tasks.fecnn`) and evaluation (:mod:`covidweak.clusters.evaluate`)
read the same slices with the same classes from here, so what the network is scored on is what it
was trained to tell apart.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError
from ..models.fecnn import CLASS_NAMES

MIN_LESION_SHARE = 0.01
"""A positive training slice shows lesion on at least 1% of its lung area (when a lesion mask is
known). Wu et al. train on curated slices "showing the significant variance" (COVIDx2a, Sect. 5.1)
and find lesions under about 225 pixels undetectable (Sect. 5.2); a quarter of the phantom's lesion
slices hold under 30 lesion pixels at 256 x 256, too few to tell from a vessel. Slices with a smaller
lesion are left out, like the unlabelled slices."""

def lesion_slices(record) -> np.ndarray:
    """(Z,) bool per file slice k: does slice k show a lesion (phantom truth, else the positive annotations)."""
    if "slice_has_lesion" in record.extra:
        return np.asarray(record.extra["slice_has_lesion"], dtype=bool)
    if record.slice_labels is not None:
        return np.array([label == "positive" for label in record.slice_labels])
    raise InputError(f"study {record.study_id} has no per-slice lesion labels: task fecnn needs slice labels "
                     "(e.g. a dataset from `covidweak phantom`)")


def slice_class(diagnosis: str, lesion: Optional[bool], classes: int) -> Optional[int]:
    """The class index of one slice (order :data:`CLASS_NAMES`), None when the slice is not used.

    lesion: True (shows a lesion), False (known to show none) or None (unknown / too small).
    """
    names = CLASS_NAMES[classes]
    if diagnosis == "normal" or lesion is False:
        return names.index("normal" if classes == 3 else "negative")
    if lesion is None or diagnosis not in names:
        return None
    return names.index(diagnosis)


def study_slices(record, preprocess: dict, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Network input (n, 1, H, W) float16 (the lung box, or the resized slice) and classes (n,) int64
    of one study's used slices."""
    import SimpleITK as sitk

    from ..io import read_ct, read_image
    from ..lungs.geometry import canonical_slice_order, to_canonical
    from ..weakseg.infer import lung_labels_for, lung_slices
    from ..weakseg.prepare import input_box
    from .ct import fecnn_input

    ct = read_ct(record.ct_path)
    lungs = lung_labels_for(ct, read_image(record.lung_mask_path) if record.lung_mask_path else None)
    canonical = to_canonical(ct)
    hu = sitk.GetArrayFromImage(canonical)
    lung_array = sitk.GetArrayFromImage(to_canonical(lungs))
    box = input_box(preprocess, lung_array, canonical.GetSpacing()[1::-1])
    has_lesion = lesion_slices(record)[canonical_slice_order(ct)]
    state = [True if shown else None for shown in has_lesion]  # lesion-free slices: unknown without a mask
    if record.lesion_mask_path is not None:
        lesion = sitk.GetArrayFromImage(to_canonical(read_image(record.lesion_mask_path))) != 0
        inside = lung_array > 0
        share = (lesion & inside).sum(axis=(1, 2)) / np.maximum(inside.sum(axis=(1, 2)), 1)
        state = [None if any_lesion else False for any_lesion in lesion.any(axis=(1, 2))]
        state = [True if s >= MIN_LESION_SHARE else known for s, known in zip(share, state)]
    chosen, labels = [], []
    for z in lung_slices(lung_array):
        label = slice_class(record.diagnosis, state[z], classes)
        if label is not None:
            chosen.append(int(z))
            labels.append(label)
    if not chosen:
        shape = tuple(box.shape) if box is not None else (int(preprocess["input_size"]),) * 2
        return np.zeros((0, 1, *shape), dtype=np.float16), np.zeros(0, dtype=np.int64)
    x = fecnn_input(hu, lung_array, chosen, preprocess, box)
    return x.astype(np.float16), np.array(labels, dtype=np.int64)
