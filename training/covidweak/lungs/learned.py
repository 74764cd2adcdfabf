"""Dense lung the classical fill leaves out, put back where a small CT lung network says it is lung.

The classical pipeline finds aerated lung by its air and puts back dense lung from shape alone:
holes, costal bays, the mirrored other lung, the slices above and below (:mod:`.fill`,
:mod:`.mirror`, :mod:`.interpolate`). When consolidation fills much of a lobe (MosMedData CT-2 and
beyond), shape is not enough: a lobe-sized bay has no outline left to close, and the lowest lung
Dice on such phantom studies fell to 0.88-0.95. A 2-D U-Net trained on the phantom's exact lung
masks (task ``ct-lungs``) sees the rib cage, the mediastinum and the texture around the bay.

It only adds: a voxel joins a lung when the network labels it that lung, it is dense (the
classical air boundary stays as it is), it lies inside the rib cage (:func:`.ribcage.bony_depth`)
and outside the airway, it belongs to a region thicker than a rim (:data:`RIM_VOXELS`), and that
region spans at least :data:`MIN_SLICES` slices and connects to the lung's classical mask. So the network cannot move the air boundary,
invent a lung, swap right and left, or spill into an image that is not a chest.

Input geometry: each axial slice of the working grid (:func:`.geometry.working_grid`, <= 2 mm)
is cut to the body's in-plane bounding box (the same box for every slice) and resized to
:data:`NET_SIZE` squared, so a child's chest and an adult's fill the input alike.
Arrays are canonical (z, y, x).
"""

from __future__ import annotations

import functools
import warnings
from typing import Optional

import numpy as np
from scipy import ndimage as ndi

from .masks import FACES
from .select import LEFT, RIGHT

NET_SIZE = 128
"""Input side in pixels: a 400 mm chest at about 3 mm per pixel; lobes are tens of pixels across."""
HU_WINDOW = (-1000.0, 400.0)
"""Air to bone, mapped to [0, 1]: the network sees aerated lung, consolidation, wall and ribs."""
SHIPPED_WEIGHTS = "ct-lungs-light"
RIM_VOXELS = 1
"""Radius of the in-plane opening of the dense candidates: parts thinner than 2 * RIM_VOXELS + 1
working-grid voxels (3 voxels, 6 mm at 2 mm) are dropped. The network's 3 mm pixels blur the lung's
edge, and a rim that thin along the pleura or mediastinum is wall or fat, whereas the consolidation
this step exists for is centimetres thick. Chosen on validation phantoms (seeds 81000-85000,
``scripts/probes/lung_rules.py``) over 1 and 2: radius 2 also pared the edge of real consolidation
against the chest wall and cost heavy studies 0.002-0.03 Dice, and normal chests 0.0003-0.0009."""
IN_PLANE = np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], dtype=bool)
MIN_SLICES = 2
"""A region added in a single slice is refused: on a child-sized chest the network took the top of the
liver dome, wrapped in lung, and a dense blob above the lung apex for consolidation, each in one slice;
the consolidation this step exists for spans several slices."""


def body_box(body: np.ndarray) -> tuple[slice, slice]:
    """The in-plane (y, x) bounding box of ``body`` (z, y, x bool) over all its slices."""
    ys, xs = np.nonzero(body.any(axis=0))
    if ys.size == 0:
        return slice(0, body.shape[1]), slice(0, body.shape[2])
    return slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1)


def network_input(hu: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
    """(z, y, x) HU -> (z, 1, NET_SIZE, NET_SIZE) float32 in [0, 1]: windowed, cut to ``box``, resized."""
    import torch
    import torch.nn.functional as F

    low, high = HU_WINDOW
    cut = np.clip((hu[:, box[0], box[1]].astype(np.float32) - low) / (high - low), 0.0, 1.0)
    resized = F.interpolate(torch.from_numpy(cut)[:, None], size=(NET_SIZE, NET_SIZE), mode="bilinear",
                            align_corners=False)
    return resized.numpy()


def network_labels(labels: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
    """(z, y, x) lung labels 0/1/2 -> (z, NET_SIZE, NET_SIZE) int64, cut to ``box`` and resized (nearest)."""
    import torch
    import torch.nn.functional as F

    cut = torch.from_numpy(labels[:, box[0], box[1]].astype(np.float32))[:, None]
    return F.interpolate(cut, size=(NET_SIZE, NET_SIZE), mode="nearest")[:, 0].long().numpy()


def predict_labels(model, hu: np.ndarray, body: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """The network's lung labels (z, y, x uint8: 0, RIGHT, LEFT) on the grid of ``hu``; 0 outside the body's box."""
    import torch
    import torch.nn.functional as F

    box = body_box(body)
    height, width = box[0].stop - box[0].start, box[1].stop - box[1].start
    x = network_input(hu, box)
    out = np.zeros(hu.shape, dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(x[start:start + batch_size]))
            logits = F.interpolate(logits.float(), size=(height, width), mode="bilinear", align_corners=False)
            out[start:start + batch_size, box[0], box[1]] = logits.argmax(dim=1).numpy().astype(np.uint8)
    return out


def restore_dense_lung(filled: np.ndarray, predicted: np.ndarray, dense: np.ndarray, room: np.ndarray) -> np.ndarray:
    """``filled`` (z, y, x uint8 lung labels) plus the ``dense`` voxels inside ``room`` that ``predicted``
    gives to a lung and that connect to that lung's voxels in ``filled``. Returns new labels."""
    out = filled.copy()
    for label in (RIGHT, LEFT):
        candidates = dense & room & (predicted == label) & (out == 0)
        candidates = ndi.binary_opening(candidates, IN_PLANE, iterations=RIM_VOXELS)
        parts, count = ndi.label(candidates, FACES)
        if count == 0:
            continue
        touching = np.unique(parts[ndi.binary_dilation(out == label, FACES) & candidates])
        tall = [index + 1 for index, box in enumerate(ndi.find_objects(parts)) if box[0].stop - box[0].start >= MIN_SLICES]
        out[np.isin(parts, np.intersect1d(touching[touching > 0], tall))] = label
    return out


@functools.lru_cache(maxsize=1)
def shipped_model():
    """The shipped ``ct-lungs-light`` network on the CPU, loaded once; None (with a warning) when absent."""
    from ..errors import ModelError
    from ..models import load_weights

    try:
        return load_weights(SHIPPED_WEIGHTS, method="ct-lungs", device="cpu").model.eval()
    except ModelError as error:
        warnings.warn(f"classical lung masks only ({error})", stacklevel=2)
        return None


def learned_fill(filled: np.ndarray, hu: np.ndarray, body: np.ndarray, room: np.ndarray, air_hu: float,
                 model: Optional[object] = None) -> np.ndarray:
    """:func:`restore_dense_lung` with ``model`` (default: the shipped one; the labels unchanged without it)."""
    model = model if model is not None else shipped_model()
    if model is None:
        return filled
    return restore_dense_lung(filled, predict_labels(model, hu, body), hu >= air_hu, room)
