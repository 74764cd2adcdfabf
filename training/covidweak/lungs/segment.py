"""``segment_lungs``: classical right/left lung segmentation of a chest CT, no trained weights.

Pipeline (each step in its own module):

1. check the CT (:func:`covidweak.validate.check_ct`), permute it to canonical
   axes and smooth/resample it onto a <= 2 mm working grid (:mod:`.geometry`);
2. threshold air at :data:`AIR_HU`; drop air outside the body, in-plane per
   slice and in 3-D (:mod:`.masks`);
3. remove trachea and main bronchi by seeded, leak-guarded growing (:mod:`.airway`);
4. keep the lungs, split fused ones, name them by physical x (:mod:`.select`);
5. fill vessels, lesions and costal consolidation out to the rib cage (:mod:`.fill`,
   :mod:`.ribcage`), then consolidation
   reaching from the mediastinum to the chest wall from the mirrored other lung (:mod:`.mirror`),
   and consolidation notching a short run of slices from the lung's own outlines above and
   below it (:mod:`.interpolate`); last, dense lung the shapes cannot recover (consolidation
   filling a lobe) where the shipped CT lung network says it is lung (:mod:`.learned`);
6. on the full-resolution grid, redraw the air boundary from the full-resolution
   threshold and keep the filled dense parts from the working grid; permute back.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..progress import Progress
from ..validate import check_ct
from .airway import find_airway
from .fill import fill_lung
from .geometry import covering_box, from_canonical, resample_labels, same_grid, smooth_onto, to_canonical, voxel_ml, working_grid
from .masks import FACES, body_mask, fill_holes_per_slice, inside_air
from .interpolate import interpolate_consolidation
from .learned import learned_fill
from .mirror import mirror_consolidation
from .plausible import check_lungs
from .ribcage import bony_depth
from .select import LEFT, LUNG_MIN_ML, RIGHT, pick_lungs

AIR_HU = -400.0
"""Air/tissue threshold. Aerated lung is -900..-700 HU and ground glass -700..-400 HU, while
fat, muscle and blood are above -150 HU; -400 sits in the wide empty gap, keeps most ground
glass as "air" (less to fill back) and lies on the tissue side of partial-volume pleura.
(Hu, Hoffman & Reinhardt, IEEE TMI 2001, find optimal thresholds of about -500..-400 HU.)"""

STEPS = 6


def _coarse_segmentation(hu: np.ndarray, grid: sitk.Image, learned: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Filled lung labels (uint8 0/1/2) and the airway (bool) on the working grid. Arrays (z, y, x).
    ``learned`` False leaves out the network step (:mod:`.learned`). Raises InputError for air that is
    not a chest's lungs (:mod:`.plausible`)."""
    spacing_zyx = grid.GetSpacing()[::-1]
    vml = voxel_ml(grid)
    air = hu < AIR_HU
    body = body_mask(air)
    candidates = inside_air(air, body, LUNG_MIN_ML, vml)
    airway = find_airway(hu, candidates, body, spacing_zyx, vml)
    lungs_air, rest = pick_lungs(candidates & ~airway, body, grid, spacing_zyx, vml)
    room = body & ~airway
    depth = bony_depth(hu, body, spacing_zyx)
    filled = _fill_both(lungs_air, rest, room, spacing_zyx, depth)
    filled = mirror_consolidation(filled, hu, room, body, spacing_zyx, AIR_HU, RIGHT, LEFT)
    filled = interpolate_consolidation(filled, hu, room, spacing_zyx, AIR_HU, (RIGHT, LEFT))
    # Whether the air found is a chest's lungs is judged before the network adds anything to it.
    check_lungs(filled, body, spacing_zyx)
    if learned:
        # Consolidated lung lies inside the rib cage: the network may only add there.
        filled = learned_fill(filled, hu, body, room & (depth > 0), AIR_HU)
    return filled, airway


def _fill_both(lungs_air: np.ndarray, rest: np.ndarray, allowed: np.ndarray, spacing_zyx, depth: np.ndarray) -> np.ndarray:
    """Fill each lung within ``allowed`` minus the other lung; pockets of leftover air touching a filled lung join it."""
    filled = np.zeros_like(lungs_air)
    for label, medial_sign in ((RIGHT, 1.0), (LEFT, -1.0)):
        own = lungs_air == label
        if not own.any():
            continue
        room = allowed & (lungs_air != (LEFT if label == RIGHT else RIGHT)) & (filled == 0)
        first = fill_lung(own, room, medial_sign, spacing_zyx, depth)
        # Air cut off from the lung by a dense lesion (a transected lobe tip) rejoins it.
        pockets, _ = ndi.label(rest, FACES)
        touching = np.unique(pockets[ndi.binary_dilation(first, FACES) & rest])
        joined = np.isin(pockets, touching[touching > 0])
        if joined.any():
            first = fill_lung(first | joined, room, medial_sign, spacing_zyx, depth)
            rest = rest & ~joined
        filled[first] = label
    return filled


def _dilate_labels(labels: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Grow each label by one voxel into unlabelled ``allowed`` voxels (ties go to the right lung)."""
    out = labels.copy()
    for label in (RIGHT, LEFT):
        ring = ndi.binary_dilation(labels == label, FACES) & (out == 0) & allowed
        out[ring] = label
    return out


REFINE_MARGIN = 4
"""Full-resolution voxels kept around the lungs' box when refining: the refinement's Gaussian
(sigma half a voxel) then sees the same neighbourhood it would in the whole CT."""


def _refine_box(canon: sitk.Image, grid: sitk.Image, coarse: np.ndarray, coarse_hu: np.ndarray, grown: np.ndarray) -> np.ndarray:
    """Full-resolution labels (z, y, x uint8) for ``canon``: air voxels inside ``grown`` (the coarse lungs grown
    by one voxel), plus the dense voxels the coarse fill added, then 2-D holes (small vessels) filled per lung.

    ``canon`` is (a box of) the canonical CT; the coarse arrays are on ``grid``, which may extend beyond it.
    """

    def to_full(array: np.ndarray) -> np.ndarray:
        image = sitk.GetImageFromArray(array.astype(np.uint8))
        image.CopyInformation(grid)
        return sitk.GetArrayFromImage(resample_labels(image, canon))

    sigma = [0.5 * s for s in canon.GetSpacing()]
    full_hu = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.Cast(canon, sitk.sitkFloat32), sigma))
    region = to_full(grown)
    dense = to_full(np.where(coarse_hu >= AIR_HU, coarse, 0))
    labels = np.where(full_hu < AIR_HU, region, 0).astype(np.uint8)
    labels[dense > 0] = dense[dense > 0]
    for label in (RIGHT, LEFT):
        own = labels == label
        labels[fill_holes_per_slice(own) & (labels == 0)] = label
    return labels


def _refine(canon: sitk.Image, grid: sitk.Image, coarse: np.ndarray, coarse_hu: np.ndarray, airway: np.ndarray) -> np.ndarray:
    """:func:`_refine_box` on the box of ``canon`` around the coarse lungs (a chest CT is mostly not lung),
    pasted into an empty full-size (z, y, x) uint8 array."""
    grown = _dilate_labels(coarse, ~airway)
    index, size = covering_box(grown > 0, grid, canon, REFINE_MARGIN)
    box = sitk.RegionOfInterest(canon, size, index)
    labels = np.zeros(canon.GetSize()[::-1], dtype=np.uint8)
    (x, y, z), (nx, ny, nz) = index, size
    labels[z:z + nz, y:y + ny, x:x + nx] = _refine_box(box, grid, coarse, coarse_hu, grown)
    return labels


def segment_lungs(ct: sitk.Image, progress: Progress | None = None, learned: bool = True) -> sitk.Image:
    """Right and left lungs of a chest CT in HU.

    ``ct``: 3-D SimpleITK image in Hounsfield units, any spacing (0.5-5 mm), any
    direction matrix, table and arms allowed. Returns a uint8 image on exactly
    ``ct``'s grid: 0 background, 1 right lung, 2 left lung. Lungs include vessels,
    intrapulmonary airways and lesions (also consolidation touching the costal
    pleura); trachea and main bronchi are excluded.

    ``learned`` False gives the purely classical mask, without the CT lung network's step.

    Raises :class:`~covidweak.errors.InputError` for images that are not a CT in
    HU, when no lung-sized air region is found and when what was found is not a
    chest's lungs (sinuses, bowel gas, a few lung slices: :mod:`.plausible`).
    """

    def step(done: int, message: str) -> None:
        if progress is not None:
            progress.update(done, STEPS, message)

    check_ct(ct)
    step(0, "resampling")
    canon = to_canonical(ct)
    grid = working_grid(canon)
    coarse_hu = sitk.GetArrayFromImage(smooth_onto(canon, grid))
    step(1, "finding air, body and airway")
    coarse, airway = _coarse_segmentation(coarse_hu, grid, learned)
    step(4, "refining at full resolution")
    if same_grid(canon, grid):
        labels = coarse
    else:
        labels = _refine(canon, grid, coarse, coarse_hu, airway)
    step(5, "writing labels")
    out = sitk.GetImageFromArray(labels.astype(np.uint8))
    out.CopyInformation(canon)
    out = from_canonical(out, ct)
    step(STEPS, "done")
    return out
