"""Lesion boxes from multi-scale integrated-gradient saliency (Hu et al., IEEE Access 2020, Sect. II-F).

1. Integrated gradients of the lesion score S(x) (Eq. 2-3) with a zero baseline x' and
   m = :data:`IG_STEPS` right Riemann steps, attributed at the outputs of Conv3, Conv4 and
   Conv5 of :class:`~covidweak.models.mscam.MultiScaleCAM` (Captum's LayerIntegratedGradients);
   each map is summed over channels and upsampled to the input size.
2. Joint saliency: the pixel-wise product of the three maps (Fig. 2e).
3. |joint|, a 5x5 Gaussian blur, an Isodata threshold, closing (dilation then erosion), and
   connected components of at least :data:`MIN_BOX_AREA_MM2`: one box per component per slice.

Hu et al. box single 2-D slices. For a CT we also merge boxes into 3-D boxes: a slice box joins
a box of the adjacent slice when their in-plane rectangles overlap, and a chain of joined
boxes becomes one 3-D box spanning their union (documented choice, not the paper's).
Only lung pixels are thresholded, because Hu et al. worked on lung crops.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Optional

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..errors import ModelError
from ..progress import Progress

IG_STEPS = 25
"""Hu et al. Sect. II-G: "we fix m = 25 in Eq. 3"."""
BLUR_KERNEL = 5
"""Hu et al. Sect. II-F: a 5x5 Gaussian kernel."""
BLUR_SIGMA = 0.3 * ((BLUR_KERNEL - 1) * 0.5 - 1) + 0.8
"""The sigma OpenCV derives for a 5-tap Gaussian when none is given (1.1 pixels)."""
MIN_BOX_AREA_MM2 = 25.0
"""Hu et al. keep components "above a certain threshold" without a value; 5 x 5 mm drops specks."""
LESION_CLASS = 1
"""Class 0 of the multi-scale CAM is "no lesion" (covidweak.models.mscam)."""


def joint_saliency(model, stacks: np.ndarray, steps: int = IG_STEPS, target: int = LESION_CLASS, device="cpu") -> np.ndarray:
    """Multi-scale joint IG saliency (Hu et al. Fig. 2e) of prepared stacks.

    model: a MultiScaleCAM in eval mode; stacks: (N, depth, S, S) float32. Returns (N, S, S) float32,
    signed (the product of the Conv3/4/5 channel-summed attributions).
    """
    import torch
    from captum.attr import LayerIntegratedGradients
    from torch.nn import functional as F

    from ..models.mscam import CAM_BLOCKS

    x = torch.from_numpy(stacks).to(device)
    joint = torch.ones(x.shape[0], *x.shape[-2:], device=x.device)
    # One attribution per level: Conv4 and Conv5 depend on Conv3, and Captum's multi-layer mode
    # would interpolate all three at once, which is not the IG of any single level.
    for block in CAM_BLOCKS:
        integrated = LayerIntegratedGradients(lambda inputs: model(inputs).score, model.blocks[block])
        level = integrated.attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=steps,
                                     method="riemann_right", internal_batch_size=steps)
        summed = level.detach().float().sum(dim=1, keepdim=True)
        joint = joint * F.interpolate(summed, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return joint.cpu().numpy()


def slice_boxes(saliency: np.ndarray, lung: Optional[np.ndarray] = None, min_area_px: int = 1) -> list[dict]:
    """Hu et al.'s box extraction on one 2-D saliency map.

    saliency: (H, W) joint saliency (sign ignored); lung: (H, W) bool pixels to consider, or None for all.
    Returns boxes ``{"row_min", "col_min", "row_max", "col_max"}`` (inclusive) with ``"peak"``, the
    largest blurred |saliency| inside, for components of at least ``min_area_px`` pixels.
    """
    from skimage.filters import threshold_isodata

    blurred = ndi.gaussian_filter(np.abs(saliency).astype(np.float64), BLUR_SIGMA,
                                  truncate=(BLUR_KERNEL // 2) / BLUR_SIGMA)
    region = np.ones(saliency.shape, dtype=bool) if lung is None else lung.astype(bool)
    values = blurred[region]
    if values.size == 0 or values.max() <= values.min():
        return []
    foreground = ndi.binary_closing((blurred > threshold_isodata(values)) & region, structure=np.ones((3, 3)))
    labels, count = ndi.label(foreground)
    if count == 0:
        return []
    areas = np.bincount(labels.ravel())
    peaks = ndi.maximum(blurred, labels, np.arange(1, count + 1))
    boxes = []
    for n, (rows, cols) in enumerate(ndi.find_objects(labels)):
        if areas[n + 1] >= min_area_px:
            boxes.append({"row_min": rows.start, "col_min": cols.start, "row_max": rows.stop - 1,
                          "col_max": cols.stop - 1, "peak": float(peaks[n])})
    return boxes


def _overlap(a: dict, b: dict) -> bool:
    return (a["row_min"] <= b["row_max"] and b["row_min"] <= a["row_max"]
            and a["col_min"] <= b["col_max"] and b["col_min"] <= a["col_max"])


def merge_slices(per_slice: dict[int, list[dict]]) -> list[dict]:
    """Chain overlapping boxes of adjacent slices into 3-D boxes (see the module docstring).

    per_slice: slice index -> :func:`slice_boxes` output. Returns boxes with ``slice_min``/``slice_max``
    added, the union of the chained in-plane extents and the largest peak.
    """
    items = [(z, box) for z in sorted(per_slice) for box in per_slice[z]]
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    on_slice: dict[int, list[int]] = defaultdict(list)
    for i, (z, box) in enumerate(items):
        for j in on_slice[z - 1]:
            if _overlap(items[j][1], box):
                parent[root(i)] = root(j)
        on_slice[z].append(i)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(items)):
        groups[root(i)].append(i)
    merged = []
    for members in groups.values():
        boxes = [items[i][1] for i in members]
        slices = [items[i][0] for i in members]
        merged.append({"row_min": min(b["row_min"] for b in boxes), "col_min": min(b["col_min"] for b in boxes),
                       "row_max": max(b["row_max"] for b in boxes), "col_max": max(b["col_max"] for b in boxes),
                       "slice_min": min(slices), "slice_max": max(slices), "peak": max(b["peak"] for b in boxes)})
    return merged


def lesion_boxes(ct: sitk.Image, model, lungs: sitk.Image, steps: int = IG_STEPS, batch_size: int = 4,
                 min_area_mm2: float = MIN_BOX_AREA_MM2, device: str = "auto",
                 progress: Optional[Progress] = None) -> list[dict]:
    """3-D lesion boxes of a CT from a multi-scale CAM (``model``: a LoadedModel of method "mscam").

    ct: 3-D CT in HU; lungs: labels on the CT grid (slices without lung are skipped). Each box:
    ``ras_min``, ``ras_max``, ``centre``, ``size`` (RAS mm), ``k_min``/``k_max`` (CT slice indices) and
    ``score`` (its peak blurred |saliency| over the CT's largest, 0-1), highest score first.
    """
    from ..device import resolve_device
    from ..preprocess import resize_slices
    from ..lungs.geometry import to_canonical
    from .infer import batches, lung_labels_for, lung_slices
    from .prepare import prepare_stacks

    if model.method != "mscam":
        raise ModelError(f"lesion boxes need multi-scale CAM weights (Hu et al.), got '{model.method}'; "
                         f"use --method mscam")
    torch_device = resolve_device(device)
    model.model.to(torch_device).eval()
    lungs = lung_labels_for(ct, lungs)
    canonical, lungs_canonical = to_canonical(ct), to_canonical(lungs)
    hu, lung = sitk.GetArrayViewFromImage(canonical), sitk.GetArrayViewFromImage(lungs_canonical) > 0
    size = int(prepare_stacks(hu, [0], model.preprocess).shape[-1])
    scale_yx = np.array(hu.shape[1:]) / size
    pixel_mm2 = float(np.prod(np.array(canonical.GetSpacing()[1::-1]) * scale_yx))
    todo, per_slice = lung_slices(lung), {}
    progress = progress or Progress()
    for done, centres in enumerate(batches(todo, batch_size)):
        progress.update(done * batch_size, len(todo), "saliency")
        saliency = joint_saliency(model.model, prepare_stacks(hu, centres, model.preprocess), steps, device=torch_device)
        masks = resize_slices(lung[centres].astype(np.uint8), size, order=0) > 0
        for z, s, m in zip(centres, saliency, masks):
            per_slice[int(z)] = slice_boxes(s, m, int(np.ceil(min_area_mm2 / pixel_mm2)))
    boxes = merge_slices(per_slice)
    top = max((b["peak"] for b in boxes), default=1.0) or 1.0
    return sorted((_to_physical(b, canonical, ct, scale_yx, top) for b in boxes), key=lambda b: -b["score"])


def _to_physical(box: dict, canonical: sitk.Image, ct: sitk.Image, scale_yx: np.ndarray, top: float) -> dict:
    """A box in network-grid pixels of canonical slices -> RAS corners and CT slice indices."""
    import itertools

    # Pixel edges (not centres) so a one-pixel box still has an extent.
    rows = ((box["row_min"]) * scale_yx[0] - 0.5, (box["row_max"] + 1) * scale_yx[0] - 0.5)
    cols = ((box["col_min"]) * scale_yx[1] - 0.5, (box["col_max"] + 1) * scale_yx[1] - 0.5)
    slices = (box["slice_min"] - 0.5, box["slice_max"] + 0.5)
    lps = np.array([canonical.TransformContinuousIndexToPhysicalPoint((c, r, z))
                    for c, r, z in itertools.product(cols, rows, slices)])
    ras = lps * np.array([-1.0, -1.0, 1.0])
    k = [ct.TransformPhysicalPointToContinuousIndex(tuple(p))[2] for p in lps]
    low, high = ras.min(axis=0), ras.max(axis=0)
    return {"ras_min": low.round(3).tolist(), "ras_max": high.round(3).tolist(),
            "centre": ((low + high) / 2).round(3).tolist(), "size": (high - low).round(3).tolist(),
            "k_min": int(np.ceil(min(k))), "k_max": int(np.floor(max(k))), "score": round(box["peak"] / top, 4)}
