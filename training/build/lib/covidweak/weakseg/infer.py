"""Slice-by-slice lesion probability for a whole CT, in bounded memory.

:func:`segment_ct` is the one inference entry point of the CLI, the evaluation and Slicer.
The CT is put in canonical (LPS) axes, the axial slices that contain lung are cut into
batches, and each batch is prepared (:func:`covidweak.weakseg.prepare.prepare_stacks`), run,
upsampled back to the slice grid and written into one float32 volume. Only one batch of
network input exists at a time, so a 512x512x600 CT needs the CT, the output volume and the
lung labels, not the ~1.4 GB x depth of all its stacks at 448 x 448.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..lungs.geometry import from_canonical, to_canonical
from ..progress import Progress

T_FG = 0.1
"""M-SEAM-NAM Table 1 / Fig. 3: the foreground threshold chosen by the ablation."""
T_BG = 0.01
"""M-SEAM-NAM Sect. 3.4: pixels below 0.01 are confidently background."""
DEFAULT_BATCH_SIZE = 8
"""M-SEAM-NAM feeds 8 consecutive slices per batch (Sect. 2.4); also fits 8 GB at 448 x 448."""


@dataclass
class SegmentResult:
    """Everything ``covidweak segment`` writes, all images on the CT's exact grid.

    probability: float32 0-1, 0 outside the lungs; lungs: uint8 0 / 1 right / 2 left;
    mask: uint8, probability > t_fg; lesions: rows of lesions.csv; summary: summary.json;
    boxes: Hu et al. lesion boxes (:func:`covidweak.weakseg.saliency.lesion_boxes` rows), None unless asked for.
    """

    probability: sitk.Image
    lungs: sitk.Image
    mask: sitk.Image
    lesions: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    t_fg: float = T_FG
    t_bg: float = T_BG
    boxes: Optional[list] = None


def check_thresholds(t_fg: float, t_bg: float) -> None:
    """The one threshold rule of the CLI, the batch and the Slicer module: 0 <= T_bg <= T_fg < 1.
    T_bg = T_fg is allowed: the uncertain band T_bg..T_fg is then empty, not wrong."""
    if not (0.0 <= t_bg <= t_fg < 1.0):
        raise InputError(f"thresholds need 0 <= T_bg <= T_fg < 1, got T_bg={t_bg}, T_fg={t_fg}: "
                         f"lower T_bg or raise T_fg (defaults T_fg {T_FG}, T_bg {T_BG})")


def lung_labels_for(ct: sitk.Image, lungs: Optional[sitk.Image], progress: Optional[Progress] = None) -> sitk.Image:
    """uint8 lung labels on ``ct``'s grid: ``lungs`` checked (grid, non-empty, a chest's lungs), or :func:`covidweak.lungs.segment_lungs`."""
    if lungs is None:
        from ..lungs import segment_lungs

        lungs = segment_lungs(ct, progress=progress)
    if lungs.GetDimension() != 3 or lungs.GetSize() != ct.GetSize():
        raise InputError(f"lung mask size {lungs.GetSize()} differs from the CT's {ct.GetSize()}: "
                         f"give the lung mask computed on this CT")
    same = (np.allclose(lungs.GetSpacing(), ct.GetSpacing(), atol=1e-4)
            and np.allclose(lungs.GetOrigin(), ct.GetOrigin(), atol=1e-3)
            and np.allclose(lungs.GetDirection(), ct.GetDirection(), atol=1e-4))
    if not same:
        raise InputError("lung mask geometry (origin/spacing/direction) differs from the CT's: "
                         "give the lung mask computed on this CT")
    lungs = sitk.Cast(lungs, sitk.sitkUInt8)
    lungs.CopyInformation(ct)
    if not sitk.GetArrayViewFromImage(lungs).any():
        raise InputError("the lung mask is empty: no lung to analyse; check the CT is a chest CT in HU")
    from ..lungs.plausible import check_lung_image

    check_lung_image(ct, lungs)  # a given mask crops the network input too, so it must be a chest's lungs
    return lungs


def lung_slices(lungs_zyx: np.ndarray) -> np.ndarray:
    """Indices of the axial slices (axis 0) that contain any lung voxel."""
    return np.flatnonzero(lungs_zyx.reshape(lungs_zyx.shape[0], -1).any(axis=1))


def batches(indices: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(indices), batch_size):
        yield indices[start:start + batch_size]


def autocast_for(device, model=None):
    """bf16 autocast on a GPU that supports it; plain float32 elsewhere.

    CPU autocast is left off: bf16 convolutions on CPU are slower than float32 on most
    machines and would make CPU results depend on the CPU's ISA. A model whose class sets
    ``bf16_inference = False`` also runs in float32 on a GPU.
    """
    import contextlib

    import torch

    wanted = getattr(model, "bf16_inference", True)
    if wanted and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def slice_logits(model, stacks: np.ndarray, size_yx: tuple[int, int], device, box=None, gate: bool = True) -> np.ndarray:
    """Lesion logit maps of prepared stacks on the slice grid.

    stacks: (B, depth, S, S) or, with a lung ``box``, (B, depth, H, W) float32 network input.
    Returns (B, Y, X) float32 logits. The network's map is upsampled bilinearly to the input
    (logits before any sigmoid, as :func:`covidweak.models.probability.cam_to_probability`); a box
    map is upsampled to the box and then put back onto the slice grid
    (:func:`covidweak.preprocess.lungbox.from_box`), pixels outside the box taking the logit of an
    absent lesion. With ``gate`` a slice the model's own classifier calls lesion-free gets that
    absent logit everywhere (``lesion_logits(..., gate=True)``: a class map is only read for a
    class found present).
    """
    import torch
    from torch.nn import functional as F

    from ..models.factory import ABSENT_LOGIT, lesion_logits
    from ..preprocess.lungbox import from_box

    x = torch.from_numpy(stacks).to(device)
    with torch.inference_mode(), autocast_for(device, model):
        logits = lesion_logits(model, x, gate=gate)
    target = tuple(size_yx) if box is None else tuple(box.shape)
    logits = F.interpolate(logits.float(), size=target, mode="bilinear", align_corners=False)[:, 0].cpu().numpy()
    return logits if box is None else from_box(logits, box, fill=ABSENT_LOGIT)


def slice_probability(model, stacks: np.ndarray, size_yx: tuple[int, int], device, box=None,
                      offset: float = 0.0) -> np.ndarray:
    """(B, Y, X) float32 lesion probability in [0, 1]: the sigmoid of the gated :func:`slice_logits`
    plus ``offset`` (the weights' ``logit_offset``, :mod:`covidweak.weakseg.calibration`)."""
    import torch

    logits = torch.from_numpy(slice_logits(model, stacks, size_yx, device, box, gate=True))
    return torch.sigmoid(logits + offset).numpy()


def probability_volume(hu: np.ndarray, lungs: np.ndarray, model, preprocess: dict, batch_size: int, device,
                       progress: Optional[Progress] = None,
                       spacing_zyx: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Lesion probability of a canonical volume.

    hu: (Z, Y, X) HU; lungs: (Z, Y, X) labels, nonzero = lung; spacing_zyx: (dz, dy, dx) mm, which
    places the lung box of a box network and sizes lesions. Returns (Z, Y, X) float32, 0 outside
    the lungs and, for weights with a ``lesion_hu_floor`` or ``min_lesion_ml``, at or below that
    attenuation and in regions above T_fg smaller than that volume
    (:mod:`covidweak.weakseg.calibration`); slices without lung are never run.
    """
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    from .calibration import attenuation_gate, size_gate
    from .prepare import input_box, prepare_stacks

    spec = preprocess or {}
    floor, offset = spec.get("lesion_hu_floor"), float(spec.get("logit_offset", 0.0))

    box = input_box(preprocess, lungs, spacing_zyx[1:])
    out = np.zeros(hu.shape, dtype=np.float32)
    todo = lung_slices(lungs)
    progress = progress or Progress()
    done = 0
    for centres in batches(todo, batch_size):
        progress.update(done, len(todo), "lesion probability")
        stacks = prepare_stacks(hu, centres, preprocess, lungs, box)
        probability = slice_probability(model, stacks, hu.shape[1:], device, box, offset) * (lungs[centres] > 0)
        out[centres] = attenuation_gate(probability, hu[centres], floor)
        done += len(centres)
    progress.update(done, len(todo), "lesion probability")
    return size_gate(out, spacing_zyx, spec.get("min_lesion_ml"), T_FG)


def segment_ct(ct: sitk.Image, model, lungs: Optional[sitk.Image] = None, t_fg: float = T_FG, t_bg: float = T_BG,
               batch_size: int = DEFAULT_BATCH_SIZE, device: str = "auto",
               progress: Optional[Progress] = None) -> SegmentResult:
    """Lesion probability, mask at ``t_fg``, lesion table and summary of one chest CT.

    ct: 3-D CT in HU (any direction matrix); model: a :class:`~covidweak.models.weights.LoadedModel`;
    lungs: labels 0/1/2 on the CT grid, or None to segment them. Every output image has the
    CT's exact geometry. Raises InputError for a 2-D image (a radiograph), a non-CT or a CT
    without lungs, DeviceError for an absent GPU.
    """
    from ..device import resolve_device
    from ..validate import check_ct

    if ct.GetDimension() != 3:
        raise InputError(f"segment needs a 3-D chest CT, got a {ct.GetDimension()}-D image "
                         f"(a radiograph or a single slice?): give the whole CT volume")
    check_ct(ct)
    check_thresholds(t_fg, t_bg)
    torch_device = resolve_device(device)
    start = time.perf_counter()
    lungs = lung_labels_for(ct, lungs, progress)
    lungs_done = time.perf_counter()
    model.model.to(torch_device).eval()
    ct_canonical, lungs_canonical = to_canonical(ct), to_canonical(lungs)
    array = probability_volume(sitk.GetArrayViewFromImage(ct_canonical), sitk.GetArrayViewFromImage(lungs_canonical),
                               model.model, model.preprocess, batch_size, torch_device, progress,
                               tuple(reversed(ct_canonical.GetSpacing())))
    canonical = sitk.GetImageFromArray(array)
    del array  # the image holds its own copy; keep one volume alive, not two
    canonical.CopyInformation(lungs_canonical)
    del ct_canonical, lungs_canonical
    probability = from_canonical(canonical, ct)
    del canonical
    network_done = time.perf_counter()
    result = finish(ct, lungs, probability, t_fg, t_bg, model_summary(model, torch_device))
    # Where the runtime went, for the speed goals (summary.json; `covidweak bench segment` prints it).
    end = time.perf_counter()
    result.summary["stage_seconds"] = {"lungs_s": round(lungs_done - start, 3),
                                       "probability_s": round(network_done - lungs_done, 3),
                                       "tables_s": round(end - network_done, 3)}
    result.summary["runtime_s"] = round(end - start, 3)
    return result


def model_summary(model, device) -> dict:
    """The summary.json fields that say which network produced the map, and how its map was read
    (the weights' calibration settings; None where a file has none)."""
    from .calibration import settings_of

    return {"method": model.method, "weights": model.path.stem if model.path else "", "weights_sha256": model.sha256,
            "backbone": model.arch.get("backbone", ""), "device": str(device), **settings_of(model.preprocess)}


def finish(ct: sitk.Image, lungs: sitk.Image, probability: sitk.Image, t_fg: float, t_bg: float,
           about: dict) -> SegmentResult:
    """Threshold ``probability`` and add the lesion table and summary (``about``: model identity)."""
    from ..zones import zone_map_3d
    from .lesions import lesion_table, summarize

    mask = threshold(probability, t_fg)
    zones = zone_map_3d(lungs)  # once for the lesion table and the involvement
    lesions = lesion_table(probability, mask, ct, lungs, zones)
    summary = summarize(probability, mask, lungs, lesions, t_fg, t_bg, about, zones)
    return SegmentResult(probability=probability, lungs=lungs, mask=mask, lesions=lesions, summary=summary,
                         t_fg=t_fg, t_bg=t_bg)


def threshold(probability: sitk.Image, t_fg: float) -> sitk.Image:
    """uint8 mask ``probability > t_fg`` with the probability's geometry (a numpy compare: milliseconds)."""
    mask = sitk.GetImageFromArray((sitk.GetArrayViewFromImage(probability) > t_fg).astype(np.uint8))
    mask.CopyInformation(probability)
    return mask
