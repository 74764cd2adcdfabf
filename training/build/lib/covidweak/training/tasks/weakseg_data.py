"""Slices, bags and masks for the weakly supervised segmentation tasks (Tang et al., MICCAI 2021).

Every study is read once, put in canonical (LPS) axis order and turned into network input by
:func:`covidweak.weakseg.prepare.prepare_stacks` for all its slices, the same call inference
makes (the 1.4 mm lung box for networks whose ``preprocess`` names it), and kept in memory as
float16. Slice labels follow Sect. 3.1 of the paper:

* *positive*: an annotated lesion slice of a positive patient;
* *negative*: any slice of a negative patient (the phantom's "normal" patients);
* *unknown*: an unannotated slice of a positive patient.

Which slices a method trains on (see :func:`slice_samples`, :func:`bag_samples`,
:func:`mask_samples`):

* single-slice weak methods (CAM pre-training, CAM, SEAM, SEAM+NAM, multi-scale CAM) use the
  slices with a known label only, positive -> 1 and negative -> 0; unknown slices are never
  used, since their label is exactly what the weak annotation leaves open;
* M-SEAM-NAM uses bags (Sect. 2.3, :func:`covidweak.losses.make_bags`): one positive slice and
  the seven slices after it (positive or unknown) form a positive bag, eight consecutive slices
  of a negative patient a negative bag; this is how unknown slices enter training;
* the U-Net baseline is trained "using CT layers labeled with segmentation annotations and the
  same amount of negative layers in negative patients" (Sect. 3.1): the positive slices with
  their lesion masks (the sparse, every 4-5 slices annotation) plus negative slices with empty
  masks.

"Negative layers are randomly selected to keep the sample balance" (Sect. 3.1): each epoch
draws as many negative samples as there are positive ones, except for multi-scale CAM, whose
paper (Hu et al.) balances with class weights in the loss instead and so sees every slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
import SimpleITK as sitk
import torch

from ...io import read_ct, read_image
from ...losses.mil import BAG_SIZE, NEGATIVE, POSITIVE, make_bags
from ...lungs.geometry import canonical_slice_order, to_canonical
from ...preprocess import resize_slices
from ...preprocess.lungbox import LungBox, to_box
from ...records import StudyRecord
from ...weakseg.prepare import LUNG_BOX, input_box, prepare_stacks


@dataclass
class PreparedStudy:
    """One study ready for training or validation, all arrays in canonical slice order.

    ``stacks``: (Z, depth, S, S) float16 network input; ``labels``: Z weak slice labels;
    ``lesion`` / ``lungs``: (Z, S, S) bool masks at input resolution (None when the study has
    no such file).
    """

    study_id: str
    patient_id: str
    negative: bool
    stacks: np.ndarray
    labels: list[str]
    lesion: Optional[np.ndarray]
    lungs: Optional[np.ndarray]


def _canonical_mask(path) -> np.ndarray:
    """A label file -> (Z, Y, X) bool in canonical order (nonzero = inside)."""
    return sitk.GetArrayFromImage(to_canonical(read_image(path))) != 0


def _on_input_grid(mask: np.ndarray, size: int, box: Optional[LungBox]) -> np.ndarray:
    """(Z, Y, X) bool -> the network's input grid: the lung box, or the whole slice resized to ``size``."""
    if box is not None:
        return to_box(mask, box, order=0)
    return resize_slices(mask.astype(np.uint8), size, order=0).astype(bool)


def prepare_study(record: StudyRecord, preprocess: dict, with_masks: bool = True) -> PreparedStudy:
    """Read one study and prepare every slice with ``prepare_stacks``, the call inference makes.

    A lung-box network (``preprocess["geometry"] == "lung_box"``) needs the lungs to place its
    box and to mask its input. The study's own lung mask is used when it has one (the phantom
    and COVID-19-CT-Seg ship them; it saves the classical segmentation's time per study), else
    :func:`covidweak.lungs.segment_lungs`, as at inference. Its lung mask on the box is always
    kept, so that negatives can be drawn from slices with lung only.
    """
    image = read_ct(record.ct_path)
    canonical = to_canonical(image)
    hu = sitk.GetArrayFromImage(canonical)
    order = canonical_slice_order(image)
    if record.slice_labels is None or len(record.slice_labels) != len(order):
        raise ValueError(f"study {record.study_id} needs one slice label per axial slice")
    labels = [record.slice_labels[k] for k in order]
    size = int(preprocess["input_size"])
    full_lungs = _canonical_mask(record.lung_mask_path) if record.lung_mask_path is not None else None
    box = None
    if preprocess.get("geometry") == LUNG_BOX:
        if full_lungs is None:
            from ...lungs import segment_lungs

            full_lungs = sitk.GetArrayFromImage(to_canonical(segment_lungs(image))) != 0
        spacing_x, spacing_y = canonical.GetSpacing()[:2]
        box = input_box(preprocess, full_lungs, (spacing_y, spacing_x))
    stacks = prepare_stacks(hu, range(hu.shape[0]), preprocess, full_lungs, box).astype(np.float16)
    lesion = lungs = None
    if with_masks and record.lesion_mask_path is not None:
        lesion = _on_input_grid(_canonical_mask(record.lesion_mask_path), size, box)
    if full_lungs is not None and (with_masks or box is not None):
        lungs = _on_input_grid(full_lungs, size, box)
    negative = all(label == NEGATIVE for label in labels)
    return PreparedStudy(record.study_id, record.patient_id, negative, stacks, labels, lesion, lungs)


# A sample is (study index, slice indices, label): one slice, or one bag of consecutive slices.
Sample = tuple[int, tuple[int, ...], int]


def slice_samples(studies: Sequence[PreparedStudy]) -> tuple[list[Sample], list[Sample]]:
    """Single slices with a known label: (positives, negatives); unknown slices are left out."""
    positives, negatives = [], []
    for s, study in enumerate(studies):
        for k, label in enumerate(study.labels):
            if label == POSITIVE:
                positives.append((s, (k,), 1))
            elif label == NEGATIVE and study.negative and _has_lung(study, (k,)):
                negatives.append((s, (k,), 0))
    return positives, negatives


def bag_samples(studies: Sequence[PreparedStudy], bag_size: int = BAG_SIZE) -> tuple[list[Sample], list[Sample]]:
    """Every candidate bag (Sect. 2.3): (positive bags, negative bags)."""
    positives, negatives = [], []
    for s, study in enumerate(studies):
        target = negatives if study.negative else positives
        target.extend((s, tuple(bag), 0 if study.negative else 1) for bag in make_bags(study.labels, study.negative, bag_size)
                      if not study.negative or _has_lung(study, bag))
    return positives, negatives


def _has_lung(study: PreparedStudy, slices) -> bool:
    """Whether every slice of ``slices`` shows lung (always True when the study keeps no lung mask).

    A negative slice without lung (neck, upper abdomen) teaches nothing about lesions and is
    trivially lesion-free; the box networks draw negatives from lung slices only.
    """
    return study.lungs is None or bool(study.lungs[list(slices)].any(axis=(1, 2)).all())


def mask_samples(studies: Sequence[PreparedStudy]) -> tuple[list[Sample], list[Sample]]:
    """U-Net samples: annotated positive slices (their mask is used) and negative slices."""
    positives, negatives = slice_samples(studies)
    missing = {studies[s].study_id for s, _, _ in positives if studies[s].lesion is None}
    if missing:
        raise ValueError(f"the U-Net needs lesion masks; studies without one: {', '.join(sorted(missing))}")
    return positives, negatives


def epoch_samples(positives: list[Sample], negatives: list[Sample], balance: bool, rng: np.random.Generator) -> list[Sample]:
    """One epoch's samples in a random order; with ``balance`` as many negatives as positives, drawn at random."""
    if not positives or not negatives:
        raise ValueError(f"training needs positive and negative samples, got {len(positives)} and {len(negatives)}")
    if balance:
        picked = rng.choice(len(negatives), size=len(positives), replace=len(negatives) < len(positives))
        negatives = [negatives[i] for i in picked]
    samples = positives + negatives
    return [samples[i] for i in rng.permutation(len(samples))]


@dataclass
class Augment:
    """Ranges of the paper's "shift, rotation, flip, brightness changing and center cropping" (Sect. 3.2).

    The paper gives no magnitudes; these are small, since lesions are small and the lungs fill
    most of the slice. ``zoom`` > 1 crops the centre and scales it back up.
    """

    flip: bool = True
    shift: float = 0.05  # fraction of the image side
    rotate_deg: float = 10.0
    zoom: float = 1.1
    brightness: float = 0.05  # added to [0, 1] intensities
    contrast: float = 0.1  # relative gain


def augment(x: torch.Tensor, mask: Optional[torch.Tensor], spec: Augment, generator: torch.Generator):
    """The same random geometric transform for a stack's channels and its mask.

    x: (N, C, H, W) float; mask: (N, 1, H, W) float or None. Returns (x, mask), same shapes;
    the mask is resampled with nearest neighbour so it stays binary. Rotations are rotations of
    the pixel grid, also when H != W.
    """
    n = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = torch.deg2rad(uniform(-spec.rotate_deg, spec.rotate_deg))
    scale = 1.0 / uniform(1.0, spec.zoom)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if spec.flip else torch.ones(n)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    # affine_grid works in coordinates normalised to [-1, 1] on each axis; on a non-square image
    # (the 160 x 224 lung box) a rotation there is a shear in pixels. Conjugating by the aspect
    # ratio H / W makes it a rotation in pixel space.
    aspect = x.shape[-2] / x.shape[-1]
    theta = torch.stack([torch.stack([cos * flip, -sin * aspect, 2 * uniform(-spec.shift, spec.shift)], 1),
                         torch.stack([sin * flip / aspect, cos, 2 * uniform(-spec.shift, spec.shift)], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gain = uniform(1 - spec.contrast, 1 + spec.contrast)[:, None, None, None]
    offset = uniform(-spec.brightness, spec.brightness)[:, None, None, None]
    x = ((x - 0.5) * gain + 0.5 + offset).clamp(0.0, 1.0)
    if mask is not None:
        mask = torch.nn.functional.grid_sample(mask, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return x, mask


def batches(studies: Sequence[PreparedStudy], samples: list[Sample], per_batch: int, spec: Optional[Augment],
            generator: torch.Generator, with_masks: bool = False) -> Iterator[dict]:
    """Group ``samples`` into training batches (the last, partial batch is kept).

    Yields ``{"x": float32, "y": (B, 1) float32, "mask": (B, 1, S, S) float32 | None}`` for
    B = ``per_batch`` samples; x is (B, C, S, S) for single slices and (B, bag, C, S, S) for bags.
    """
    for start in range(0, len(samples), per_batch):
        chunk = samples[start : start + per_batch]
        x = torch.from_numpy(np.stack([studies[s].stacks[list(ks)] for s, ks, _ in chunk])).float()
        y = torch.tensor([[float(label)] for _, _, label in chunk])
        mask = None
        if with_masks:
            mask = torch.from_numpy(np.concatenate([
                studies[s].lesion[list(ks)] if label else np.zeros((len(ks),) + x.shape[-2:], bool)
                for s, ks, label in chunk])).float()[:, None]
        bag_shape = x.shape[:2]
        x = x.flatten(0, 1)
        if spec is not None:
            x, mask = augment(x, mask, spec, generator)
        if bag_shape[1] > 1:
            x = x.unflatten(0, bag_shape)
        yield {"x": x, "y": y, "mask": mask}
