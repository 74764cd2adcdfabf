"""FeCNN on whole CTs: slice input, diagnosis per slice and the lesions of the positive slices.

Input (Wu et al. Sect. 4.2.2): one axial slice, HU window to [0, 1], everything outside the
lungs set to 0 ("the lung was segmented out"). Weights whose ``preprocess`` says ``geometry:
lung_box`` read the shared 1.4 mm lung box (:mod:`covidweak.preprocess.lungbox`), the paper's
"crop to the lungs" at a fixed physical scale; older files read the whole slice resized to
``input_size``. Only slices holding lung are used, which replaces the paper's "mean intensity
below 0.08" rule for dropping the slices before and after the lungs.

Lesions are 2-D, one per LAHm component on a slice (the paper's detector works per slice,
Sect. 6 limitation (i)); ``lesion_id`` numbers them through the study. A lesion's voxels are
its upsampled component inside the lungs. Weights with a ``lesion_hu_floor`` (our addition, not
the paper's) grow each upsampled component by :data:`REGION_MARGIN_MM` and split it into its
pieces of raised attenuation (:func:`attenuating_pieces`): a 5.6 mm cell of P3 is coarse beside a
lesion, and every lesion type is lung denser than aerated parenchyma, so the pieces box the
lesions far more tightly.
Its feature (``preprocess["lesion_descriptor"]``) is the paper's A at the component's maximum
(``peak``, Eq. 9), or A averaged over the component, scaled to unit length, followed by the
density statistics of the lesion's pixels (``component_hu``, :mod:`.density`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..errors import InputError
from ..models.fecnn import COVID_CLASS, LAM_THRESHOLDS, LESION_DESCRIPTORS
from ..progress import Progress
from .density import HU_STATISTICS, hu_statistics
from .lam import (FOUR_CONNECTIVITY, component_maxima, component_means, gradcam_lahm, lesion_activation_map,
                  lesion_components, lesion_features, upsample)

DEFAULT_BATCH_SIZE = 10
"""Wu et al. Sect. 4.2.1: batch size 10."""
MIN_PIECE_MM2 = 19.6
"""Smallest piece of raised attenuation kept as a lesion (mm²: 10 pixels of 1.4 mm, about 5 mm
across). Chosen on the lesion slices of the 12 validation patients of fecnn-light's run among 2,
10 and 25 pixels at floors -750, -700 and -650 HU: at -700 HU the hit rate at overlap 0.5 is
35.8 / 34.9 / 33.4 % against 12.6 % without the split, with 5,805 / 1,591 / 664 detections
against 1,656. 10 pixels is the best hit rate that does not add detections (vessel sections)."""

REGION_MARGIN_MM = 5.6
"""How far each upsampled LAHm component is grown before it is cut into attenuating pieces (mm):
one cell of P3 at the lung box (4 pixels of 1.4 mm); our addition, not the paper's. A component's
edge is a cell edge, which cuts a lesion wherever the map's Otsu threshold falls inside it, and the
cut piece's box is then too small for the lesion's. Growing by one cell, the quantisation step it
undoes, lets the piece reach the lesion's own edge. On two validation cohorts (36 patients each,
seeds 59000 at 256²×64 and 59100 at 240²×48, ``scripts/probes/fecnn_regions.py``) the hit rate at
overlap 0.5 rose from 42.1 / 40.0 % to 54.6 / 54.4 %. Larger margins rose further (two cells 59.7 /
58.1 %, four 61.6 / 60.4 %) but then the piece is drawn by the HU floor where the map did not point,
so they were not taken."""


def descriptor_of(preprocess: dict) -> str:
    """The lesion descriptor a FeCNN's ``preprocess`` names; InputError for an unknown one."""
    descriptor = preprocess.get("lesion_descriptor", "peak")
    if descriptor not in LESION_DESCRIPTORS:
        raise InputError(f"unknown lesion_descriptor {descriptor!r} in the FeCNN weights: use one of {LESION_DESCRIPTORS}")
    return descriptor


def cell_fraction(mask: np.ndarray, shape: tuple[int, int], box) -> np.ndarray:
    """The share of each (h, w) cell of the network's map covered by a slice mask (Y, X), through the
    lung ``box`` when the network reads one: float32 in [0, 1]."""
    from ..preprocess import resize_slices
    from ..preprocess.lungbox import to_box

    covered = (np.asarray(mask) != 0).astype(np.float32)
    on_input = to_box(covered, box, order=1) if box is not None else covered
    return resize_slices(on_input, tuple(shape), order=1)


def lung_cells(preprocess: dict, lungs: np.ndarray, shape: tuple[int, int], box) -> Optional[np.ndarray]:
    """The (h, w) cells of the network's map that lie in the lungs, when ``preprocess["lam_threshold"]``
    asks for them (``otsu_lungs``), else None. lungs: (Y, X) labels of the slice, nonzero = lung."""
    rule = preprocess.get("lam_threshold", "otsu")
    if rule not in LAM_THRESHOLDS:
        raise InputError(f"unknown lam_threshold {rule!r} in the FeCNN weights: use one of {LAM_THRESHOLDS}")
    return cell_fraction(lungs, shape, box) > 0.5 if rule == "otsu_lungs" else None


def lesion_feature_size(loaded) -> int:
    """Length of one lesion's feature vector for a loaded FeCNN."""
    extra = len(HU_STATISTICS) if descriptor_of(loaded.preprocess) == "component_hu" else 0
    return int(loaded.model.feature_channels) + extra


def fecnn_input(hu: np.ndarray, lungs: np.ndarray, centres, preprocess: dict, box=None) -> np.ndarray:
    """(len(centres), 1, H, W) float32 network input of canonical slices ``centres``.

    hu, lungs: (Z, Y, X) canonical HU and lung labels (nonzero = lung). With the lung ``box``
    (:func:`covidweak.weakseg.prepare.input_box`) (H, W) is the box; without, the whole slice
    resized to ``preprocess["input_size"]``.
    """
    from ..preprocess import resize_slices
    from ..weakseg.prepare import prepare_stacks

    spec = {**preprocess, "stack_depth": 1}
    if box is not None:
        return prepare_stacks(hu, centres, spec, lungs, box).astype(np.float32)
    image = prepare_stacks(hu, centres, spec)
    inside = resize_slices((lungs[np.asarray(centres)] > 0).astype(np.uint8), int(spec["input_size"]), order=0)
    return (image * inside[:, None]).astype(np.float32)


def to_slice(array: np.ndarray, size_yx: tuple[int, int], box, order: int) -> np.ndarray:
    """A map on the network grid (h, w) -> the slice grid (Y, X): through the lung box when there is one."""
    from ..preprocess.lungbox import from_box

    if box is None:
        return upsample(array, size_yx, order)
    return from_box(upsample(array, tuple(box.shape), order), box, order=order, fill=0)


def grown_regions(regions: np.ndarray, margin: int) -> np.ndarray:
    """(Y, X) int labels 1..m -> the same labels, each region grown by ``margin`` pixels (a square
    neighbourhood) into background; where two grow into one pixel the higher label takes it."""
    if margin <= 0 or regions.max() == 0:
        return regions
    return np.where(regions > 0, regions, ndi.grey_dilation(regions, size=(2 * margin + 1,) * 2))


def attenuating_pieces(regions: np.ndarray, hu: np.ndarray, lungs: np.ndarray, floor: float,
                       pixel_mm2: float, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The pieces of LAM regions that are lung denser than ``floor`` HU.

    regions: (Y, X) int labels 1..m on the slice grid; hu, lungs: (Y, X) the slice, lungs nonzero;
    pixel_mm2: in-plane pixel area; margin: pixels by which each region is grown first
    (:func:`grown_regions`). Returns (pieces, parents): (Y, X) int32 labels 1..n of the
    4-connected parts of regions ∩ lungs ∩ (hu > floor) of at least :data:`MIN_PIECE_MM2`, and
    (n,) int64 the region 1..m holding most of each piece.
    """
    regions = grown_regions(regions, margin)
    pieces, count = ndi.label((regions > 0) & (lungs > 0) & (hu > floor), structure=FOUR_CONNECTIVITY)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    keep = np.flatnonzero(sizes * pixel_mm2 >= MIN_PIECE_MM2)
    keep = keep[keep > 0]
    renumber = np.zeros(count + 1, dtype=np.int32)
    renumber[keep] = np.arange(1, len(keep) + 1)
    pieces = renumber[pieces]
    parents = np.array([np.bincount(regions[pieces == k]).argmax() for k in range(1, len(keep) + 1)], dtype=np.int64)
    return pieces, parents


def region_split(preprocess: dict, hu: np.ndarray, lungs: np.ndarray, spacing_yx) -> Optional[Callable]:
    """The :func:`attenuating_pieces` split that weights with a ``lesion_hu_floor`` apply to the
    regions of one slice (hu, lungs: (Y, X); spacing_yx: (dy, dx) mm): regions -> (pieces, parents),
    or None for weights without a floor."""
    floor = preprocess.get("lesion_hu_floor")
    if floor is None:
        return None
    margin = int(round(REGION_MARGIN_MM / float(min(spacing_yx))))
    return lambda regions: attenuating_pieces(regions, hu, lungs, floor, float(np.prod(spacing_yx)), margin)


@dataclass
class SliceDetection:
    """One slice's lesion candidates at the slice grid (Y, X).

    ``regions``: int32 labels 1..m of the upsampled LAHm components; ``lam``: the LAM;
    ``features``: (m, F) lesion features; ``probabilities``: (C,) diagnosis; ``lahm_shape``:
    the (h, w) grid of the network's map.
    """

    regions: np.ndarray
    lam: np.ndarray
    features: np.ndarray
    probabilities: np.ndarray
    lahm_shape: tuple[int, int] = (0, 0)


def describe_lesions(descriptor: str, features: np.ndarray, components: np.ndarray, lahm: np.ndarray,
                     regions: np.ndarray, hu: np.ndarray, lungs: np.ndarray,
                     parents: Optional[np.ndarray] = None) -> np.ndarray:
    """Lesion features of one slice: (n, kappa) for ``peak``, (n, kappa + 4) for ``component_hu``.

    features: (kappa, h, w) A; components, lahm: (h, w) with labels 1..m; regions, hu, lungs:
    (Y, X) on the slice grid, regions labelled 1..n; parents: (n,) the component 1..m of each
    region when regions are :func:`attenuating_pieces`, else None (region j is component j). A
    piece takes its component's deep feature and its own density statistics.
    """
    if descriptor == "peak":
        deep = lesion_features(features, component_maxima(lahm, components))
    else:
        deep = component_means(features, components)
        deep /= np.maximum(np.linalg.norm(deep, axis=1, keepdims=True), 1e-12)
    if parents is not None:
        deep = deep[parents - 1]
    if descriptor == "peak":
        return deep
    return np.concatenate([deep, hu_statistics(hu, regions, lungs, len(deep))], axis=1)


def detect_slices(model, preprocess: dict, hu: np.ndarray, lungs: np.ndarray, centres, box, device,
                  spacing_yx: tuple[float, float]) -> list[SliceDetection]:
    """LAHm, components, LAM and lesion features of the canonical slices ``centres``.

    hu, lungs: (Z, Y, X) canonical HU and lung labels; box: the network's lung box or None;
    spacing_yx: (dy, dx) mm of the slices, which sizes the attenuating pieces.
    """
    import torch

    descriptor = descriptor_of(preprocess)
    batch = fecnn_input(hu, lungs, centres, preprocess, box)
    lahm, features, probabilities = gradcam_lahm(model, torch.from_numpy(batch).to(device), COVID_CLASS)
    out = []
    for b, z in enumerate(centres):
        components = lesion_components(lahm[b], lung_cells(preprocess, lungs[z], lahm[b].shape, box))
        regions = to_slice(components, hu.shape[1:], box, order=0).astype(np.int32)
        split, parents = region_split(preprocess, hu[z], lungs[z], spacing_yx), None
        if split is not None:
            regions, parents = split(regions)
        lam = to_slice(lesion_activation_map(lahm[b], components, lahm[b].shape), hu.shape[1:], box, order=1)
        out.append(SliceDetection(regions=regions, lam=lam.astype(np.float32), probabilities=probabilities[b],
                                  features=describe_lesions(descriptor, features[b], components, lahm[b], regions,
                                                            hu[z], lungs[z], parents),
                                  lahm_shape=tuple(lahm[b].shape)))
    return out


@dataclass
class CtLesions:
    """The lesions of one CT: ``rows`` (lesion_id, centroid_r/a/s, type 0-3), ``features``
    (M, kappa) in row order, ``labels`` (uint16, CT grid, voxel = lesion_id), and the slice counts."""

    rows: list[dict]
    features: np.ndarray
    labels: sitk.Image
    slices: int = 0
    positive_slices: int = 0
    probabilities: dict = field(default_factory=dict)  # canonical slice -> (C,) diagnosis


def _majority_type(types: np.ndarray) -> int:
    types = types[types > 0]
    return int(np.bincount(types).argmax()) if types.size else 0


def find_lesions(ct: sitk.Image, loaded, lungs: Optional[sitk.Image] = None, lesion_types: Optional[sitk.Image] = None,
                 device="cpu", batch_size: int = DEFAULT_BATCH_SIZE, progress: Optional[Progress] = None) -> CtLesions:
    """Lesions of the slices FeCNN calls COVID-19 (Sect. 3.2: X = the predicted positive slices).

    ct: 3-D CT in HU; loaded: a FeCNN :class:`~covidweak.models.weights.LoadedModel`; lungs:
    labels on the CT grid or None to segment them; lesion_types: the phantom's lesion mask
    (1 GGO, 2 crazy paving, 3 consolidation) to label each lesion with its true type, or None.
    """
    from ..validate import check_ct
    from ..lungs.geometry import from_canonical, to_canonical
    from ..weakseg.infer import batches, lung_labels_for, lung_slices
    from ..weakseg.lesions import ijk_to_ras
    from ..weakseg.prepare import input_box

    if ct.GetDimension() != 3:
        raise InputError(f"lesion clustering needs a 3-D chest CT, got a {ct.GetDimension()}-D image: "
                         "give the whole CT volume")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    check_ct(ct)
    lungs = lung_labels_for(ct, lungs, progress)
    canonical = to_canonical(ct)
    hu = sitk.GetArrayViewFromImage(canonical)
    lung_array = sitk.GetArrayFromImage(to_canonical(lungs))
    types = sitk.GetArrayFromImage(to_canonical(lesion_types)) if lesion_types is not None else None
    if types is not None and types.shape != hu.shape:
        raise InputError(f"lesion mask size {lesion_types.GetSize()} differs from the CT's {ct.GetSize()}: "
                         "give the mask of this CT")
    model = loaded.model.to(device).eval()
    labels = np.zeros(hu.shape, dtype=np.uint16)
    rows, features, probabilities = [], [], {}
    todo = lung_slices(lung_array)
    box = input_box(loaded.preprocess, lung_array, canonical.GetSpacing()[1::-1])
    progress = progress or Progress()
    for done, centres in enumerate(batches(todo, batch_size)):
        progress.update(done * batch_size, len(todo), "lesion maps")
        for z, found in zip(centres, detect_slices(model, loaded.preprocess, hu, lung_array, centres, box, device,
                                                   canonical.GetSpacing()[1::-1])):
            probabilities[int(z)] = found.probabilities
            if int(np.argmax(found.probabilities)) != COVID_CLASS:
                continue
            for j in range(len(found.features)):
                inside = (found.regions == j + 1) & (lung_array[z] > 0)
                if not inside.any():
                    continue
                lesion_id = len(rows) + 1
                labels[z][inside] = lesion_id
                rr, cc = np.nonzero(inside)
                centre = ijk_to_ras(canonical, (cc.mean(), rr.mean(), float(z)))
                true_type = _majority_type(types[z][inside]) if types is not None else 0
                rows.append({"lesion_id": lesion_id, "centroid_r": round(float(centre[0]), 3),
                             "centroid_a": round(float(centre[1]), 3), "centroid_s": round(float(centre[2]), 3),
                             "type": true_type})
                features.append(found.features[j])
    progress.update(len(todo), len(todo), "lesion maps")
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(canonical)
    return CtLesions(rows=rows, features=np.array(features, dtype=np.float32).reshape(len(rows), lesion_feature_size(loaded)),
                     labels=from_canonical(image, ct), slices=len(todo),
                     positive_slices=sum(int(np.argmax(p)) == COVID_CLASS for p in probabilities.values()),
                     probabilities=probabilities)
