"""Lesion courses per patient and their rendering into one study.

Types follow the phantom's lesion labels: 1 GGO (hazy, -700..-400 HU, vessels stay
visible), 2 crazy-paving (GGO plus a reticular pattern of thickened interlobular
septa), 3 consolidation (-100..+50 HU, vessels hidden, air bronchograms).
Placement follows the CT literature summarised in the DuCN, Wu and Hu papers:
COVID-19 is multifocal, bilateral, peripheral/subpleural and lower-zone
predominant; community-acquired pneumonia (CAP) is mostly a single lobar or
segmental consolidation lying more centrally.
How much of the lung a COVID-19 patient's lesions fill comes from ``burden`` (MosMedData's
CT categories): the planner adds lesions until a lattice estimate of the baseline study's
involvement reaches the patient's target, after a few small lesions every patient keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from . import tissues as T
from .burden import draw_burden, involvement_category
from .fields import smooth_field
from .grid import Grid
from .tubes import draw_segments

GGO, CRAZY_PAVING, CONSOLIDATION = 1, 2, 3
TYPE_NAMES = {GGO: "ggo", CRAZY_PAVING: "crazy-paving", CONSOLIDATION: "consolidation"}
TISSUE_OF_TYPE = {GGO: T.GGO, CRAZY_PAVING: T.CRAZY_PAVING, CONSOLIDATION: T.CONSOLIDATION}
HU_RANGE = {GGO: (-640.0, -520.0), CRAZY_PAVING: (-600.0, -530.0), CONSOLIDATION: (-35.0, 25.0)}
"""Per-lesion mean HU drawn uniformly; crazy-paving's range is the GGO under its septa."""
SEPTAL_HU = 380.0
"""HU added on thickened septa in crazy-paving (septa cover ~30 % of the lesion)."""
EDGE_MM = {GGO: 4.0, CRAZY_PAVING: 3.0, CONSOLIDATION: 1.2}
"""Width of the soft border: GGO fades into lung, consolidation is sharp."""
HALO_SCALE = 1.4
"""COVID consolidations sit in a ground-glass halo this much larger."""
BRONCHOGRAM_HU = -950.0
SIZE_FACTOR = (0.7, 1.0, 1.1)
"""Lesion size relative to its peak at 0, 1, 2 studies after onset; it then shrinks by RESOLVE per study."""
RESOLVE = 0.75


@dataclass(frozen=True)
class Lesion:
    """One lesion in one study: physical centre (x, y, z) mm, radii mm, rotation (3, 3)."""

    id: int
    centre: np.ndarray
    radii: np.ndarray
    rotation: np.ndarray
    type: int
    hu: float
    halo: bool
    seed: int
    onset: int = 0
    progresses: bool = False


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


@dataclass
class Candidates:
    """Possible lesion centres: physical points (n, 3), lung label, depth below the pleura
    (mm) and relative height in the lung (0 apex .. 1 base). The points sample the lung
    evenly, each standing for ``point_mm3`` of it, so they also measure involvement."""

    points: np.ndarray
    lung: np.ndarray
    depth: np.ndarray
    height: np.ndarray
    posterior: np.ndarray  # 0 anterior .. 1 posterior within the lung
    point_mm3: float = 1.0


def lesion_candidates(grid: Grid, lungs: np.ndarray) -> Candidates:
    """Candidate centres on a coarse lattice (every 4th in-plane voxel) of the lung mask."""
    step = max(1, grid.size // 64)
    coarse = lungs[:, ::step, ::step]
    sx, sy, sz = grid.spacing
    depth = ndimage.distance_transform_edt(coarse > 0, sampling=(sz, sy * step, sx * step))
    iz, iy, ix = np.nonzero(coarse)
    index = np.stack([iz, iy * step, ix * step], axis=1).astype(np.float64)
    points = grid.index_to_phys(index)
    lung = coarse[iz, iy, ix]
    height = np.zeros(len(iz))
    posterior = np.zeros(len(iz))
    for label in (1, 2):
        m = lung == label
        if m.any():
            z, y = points[m, 2], points[m, 1]
            height[m] = (z.max() - z) / max(np.ptp(z), 1e-6)
            posterior[m] = (y - y.min()) / max(np.ptp(y), 1e-6)
    return Candidates(points, lung, depth[iz, iy, ix], height, posterior, float(step * step * sx * sy * sz))


def _pick(rng, cand: Candidates, weight: np.ndarray, lung: int | None) -> int:
    w = weight * (cand.lung == lung) if lung else weight.copy()
    if w.sum() <= 0:  # every eligible point is excluded (e.g. all covered): fall back to the lung
        w = (cand.lung == lung).astype(float) if lung else np.ones(len(w))
    return int(rng.choice(len(w), p=w / w.sum()))


@dataclass
class Plan:
    """A patient's lesion course and its burden: ``ct_category`` 1-4, ``target`` the drawn
    fraction of the lung involved at the baseline study (None where the planner draws no
    burden), ``estimate`` the fraction the lesions cover on the candidate lattice there."""

    lesions: list[Lesion]
    ct_category: int
    target: float | None
    estimate: float


SMALL_RADIUS_MM = (3.0, 9.0)
"""Small lesions (peak radius, reference mm): the hard cases of weak supervision, 1-4
slices at 5 mm. Every positive patient keeps some, whatever its burden."""
SMALL_COUNT = (2, 5)
"""Small COVID-19 lesions per patient (inclusive): the disease is multifocal."""
FILL_RADIUS_MM = (9.0, 70.0)
"""Peak radius (reference mm) of the lesions added to reach a patient's target involvement;
up to 70 mm so that CT-3/CT-4 lungs fill with confluent patches within MAX_LESIONS (at 50 mm
a 66 % target stalled at 59 %, subpleural patches losing half their volume to the pleura)."""
FILL_SHARE = (0.8, 1.2)
"""Each added lesion's radius as a share of the radius that would hold all the missing volume."""
MAX_LESIONS = 48
"""Lesions per patient at most (ids are uint8); a CT-3 patient needs up to about 40."""
COVID_TYPES = ((GGO, CRAZY_PAVING, CONSOLIDATION), (0.72, 0.16, 0.12))
"""Type of each drawn COVID-19 lesion, as in generator 1.1: GGO dominates, as in the 70 %
GGO by count of Wu et al.'s own patients (Table 7); follow-ups turn some into consolidation."""
COVERED_WEIGHT = 0.0
"""Placement weight of lung already covered: added lesions are centred in fresh lung, so a
severe patient's lesions spread over both lungs instead of piling up on the subpleural
band (any weight there outweighs the deep lung, which ``exp(-depth / 7 mm)`` all but excludes)."""


class Coverage:
    """Which candidate points the lesions cover at the baseline study (study 0)."""

    def __init__(self, cand: Candidates):
        self.cand = cand
        self.covered = np.zeros(len(cand.points), bool)

    def add(self, lesion: Lesion) -> None:
        for shown in lesions_at([lesion], 0):  # nothing when the lesion appears later
            radii = shown.radii * (HALO_SCALE if shown.halo else 1.0)
            u = (self.cand.points - shown.centre) @ shown.rotation / radii  # (n, 3) as in _paint_one
            self.covered |= np.einsum("ij,ij->i", u, u) < 1.0

    def fraction(self, lung: int | None = None) -> float:
        """Covered share of the lung (both lungs, or label ``lung``)."""
        inside = self.covered if lung is None else self.covered[self.cand.lung == lung]
        return float(inside.mean()) if len(inside) else 0.0

    def radius_for(self, target: float, volume_factor: float = 1.0) -> float:
        """Peak radius (mm) of a sphere holding the volume still missing at the baseline."""
        missing = max(target - self.fraction(), 0.0) * len(self.covered) * self.cand.point_mm3
        return float(np.cbrt(3.0 * missing / (4.0 * np.pi * volume_factor))) / SIZE_FACTOR[0]

    def fresh(self) -> np.ndarray:
        """(n,) placement factor: 1 on uncovered points, COVERED_WEIGHT on covered ones."""
        return np.where(self.covered, COVERED_WEIGHT, 1.0)


def _fill_radius(rng, coverage: Coverage, target: float, bounds: tuple[float, float], scale: float,
                 volume_factor: float = 1.0) -> float:
    """A radius that fills part of the missing involvement: overlap and clipping at the
    pleura waste some of every lesion, so the plan aims low and adds more."""
    need = coverage.radius_for(target, volume_factor) * rng.uniform(*FILL_SHARE)
    return float(np.clip(need, bounds[0] * scale, bounds[1] * scale))


def plan_covid(rng: np.random.Generator, cand: Candidates, scale: float, lesion_scale: float = 1.0) -> Plan:
    """Multifocal, bilateral, subpleural, lower- and posterior-predominant lesions.

    ``scale``: physical mm per reference mm; ``lesion_scale`` multiplies every radius
    after the plan reached its target (and widens the subpleural placement).
    """
    category, target = draw_burden(rng)
    zone_weight = 0.2 + 4.0 * cand.height**2
    weight = np.exp(-cand.depth / (7.0 * scale * lesion_scale)) * zone_weight * (0.6 + cand.posterior)
    coverage = Coverage(cand)
    out: list[Lesion] = []

    def add(lesion: Lesion) -> None:
        out.append(lesion)
        coverage.add(lesion)

    for i in range(int(rng.integers(SMALL_COUNT[0], SMALL_COUNT[1] + 1))):
        lung = (1, 2)[i] if i < 2 else None  # the first two make it bilateral, from the baseline on
        centre = cand.points[_pick(rng, cand, weight, lung)]
        add(_lesion(rng, len(out) + 1, centre, rng.uniform(*SMALL_RADIUS_MM) * scale, _covid_type(rng), halo=True,
                    onset=0 if i < 2 else int(rng.random() < 0.2), progresses=bool(rng.random() < 0.5)))
    if coverage.fraction() < target and rng.random() < 0.5:
        # A large consolidation abutting the costal pleura of a lower lobe: the case a
        # lung segmentation must not cut out of the lung (smaller in a mild patient).
        base = weight * (cand.height > 0.55) * (cand.depth < 4.0 * scale * lesion_scale)
        centre = cand.points[_pick(rng, cand, base if base.sum() > 0 else weight, None)]
        radius = min(rng.uniform(24, 34) * scale, max(coverage.radius_for(target, HALO_SCALE**3), 12 * scale))
        add(_lesion(rng, len(out) + 1, centre, radius, CONSOLIDATION, halo=True))
    while coverage.fraction() < target and len(out) < MAX_LESIONS:
        kind = _covid_type(rng)
        factor = HALO_SCALE**3 if kind == CONSOLIDATION else 1.0
        centre = cand.points[_pick(rng, cand, weight * coverage.fresh(), None)]
        add(_lesion(rng, len(out) + 1, centre, _fill_radius(rng, coverage, target, FILL_RADIUS_MM, scale, factor),
                    kind, halo=True, onset=int(rng.random() < 0.2), progresses=bool(rng.random() < 0.5)))
    return Plan(_scaled(out, lesion_scale), category, target, coverage.fraction())


def _covid_type(rng) -> int:
    return int(rng.choice(COVID_TYPES[0], p=COVID_TYPES[1]))


def plan_cap(rng: np.random.Generator, cand: Candidates, scale: float, lesion_scale: float = 1.0) -> Plan:
    """One lobar/segmental consolidation centred deep in one lung, sometimes a satellite GGO.

    Generator 1.1's CAP, kept as it was, so a seed gives the same CAP patient under 1.1 and
    1.2. Its burden is not drawn from ``burden``: MosMedData grades COVID-19 studies, and
    no census of CAP's involvement by CT category was found to put in its place. A
    larger CAP would also defeat the classical lung mask: a consolidation filling a
    lobe from the mediastinum to the chest wall, with no aerated lung below it, is lost
    by ``covidweak.lungs`` (measured on generator-1.2 drafts: lung Dice 0.35-0.90 at
    10-45 % involvement; docs/status.md). ``ct_category`` is the category of the
    lattice estimate, ``target`` is None.
    """
    scale = scale * lesion_scale  # 1.1 scaled placement and radii together
    deep = cand.depth.max()
    weight = np.exp(-(((cand.depth - 0.55 * deep) / (0.18 * deep)) ** 2)) * (0.7 + cand.height)
    lung = int(rng.integers(1, 3))
    centre = cand.points[_pick(rng, cand, weight, lung)]
    out = [_lesion(rng, 1, centre, rng.uniform(24, 38) * scale, CONSOLIDATION, halo=False,
                   elongation=(1.0, 0.8, 1.35))]
    if rng.random() < 0.4:
        near = np.exp(-np.linalg.norm(cand.points - centre, axis=1) / (50 * scale)) * (cand.lung == lung)
        spot = cand.points[_pick(rng, cand, near * weight + 1e-12, lung)]
        out.append(_lesion(rng, 2, spot, rng.uniform(7, 14) * scale, GGO, halo=False))
    coverage = Coverage(cand)
    for lesion in out:
        coverage.add(lesion)
    return Plan(out, involvement_category(coverage.fraction()), None, coverage.fraction())


def _scaled(lesions: list[Lesion], factor: float) -> list[Lesion]:
    return [replace(l, radii=l.radii * factor) for l in lesions] if factor != 1.0 else lesions


def _lesion(rng, ident, centre, radius, kind, halo, onset=0, progresses=False, elongation=(1, 1, 1)) -> Lesion:
    radii = radius * np.array(elongation) * rng.uniform(0.75, 1.25, 3)
    return Lesion(id=ident, centre=np.array(centre, float), radii=radii, rotation=_rotation(rng), type=kind,
                  hu=float(rng.uniform(*HU_RANGE[kind])), halo=halo and kind == CONSOLIDATION,
                  seed=int(rng.integers(2**31)), onset=onset, progresses=progresses)


def lesions_at(plans: list[Lesion], study_index: int) -> list[Lesion]:
    """The lesions as they look ``study_index`` studies after the first.

    Each lesion appears at its onset, grows to a peak two studies later, then
    resolves; a progressing lesion goes GGO -> crazy-paving -> consolidation while it
    grows, and resolving consolidations fade back to ground glass (organising phase).
    """
    out = []
    for lesion in plans:
        age = study_index - lesion.onset
        if age < 0:
            continue
        factor = SIZE_FACTOR[age] if age < len(SIZE_FACTOR) else SIZE_FACTOR[-1] * RESOLVE ** (age - 2)
        kind = lesion.type
        if lesion.progresses:
            kind = min(CONSOLIDATION, kind + min(age, 2))
        if age >= 4 and kind == CONSOLIDATION:
            kind = GGO
        hu = lesion.hu if kind == lesion.type else float(np.mean(HU_RANGE[kind]))
        out.append(replace(lesion, radii=lesion.radii * factor, type=kind, hu=hu, halo=lesion.halo and kind == CONSOLIDATION))
    return out


def paint_lesions(grid: Grid, hu: np.ndarray, tissue: np.ndarray, lungs: np.ndarray, lesions: list[Lesion],
                  hila: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blend lesions into ``hu`` and ``tissue`` in place, clipped to the lungs.

    hila: (2, 3) physical hilum points (right, left); bronchograms run away from them.
    Returns (labels, ids): (z, y, x) uint8 lesion type 0-3 and lesion id 0..n.
    """
    labels = np.zeros(grid.shape, np.uint8)
    ids = np.zeros(grid.shape, np.uint8)
    bronchi = np.zeros(grid.shape, np.float32) if any(l.type == CONSOLIDATION for l in lesions) else None
    for lesion in sorted(lesions, key=lambda l: l.type):
        rng = np.random.default_rng(lesion.seed)
        if lesion.halo:
            halo = replace(lesion, radii=lesion.radii * HALO_SCALE, type=GGO, hu=float(np.mean(HU_RANGE[GGO])))
            _paint_one(grid, hu, tissue, lungs, labels, ids, halo, rng, keep_denser=True)
        _paint_one(grid, hu, tissue, lungs, labels, ids, lesion, rng, keep_denser=False)
        if lesion.type == CONSOLIDATION:
            _bronchograms(grid, bronchi, lesion, hila, rng)
    if bronchi is not None:
        flat = np.flatnonzero((bronchi.reshape(-1) > 0.05) & (labels.reshape(-1) == CONSOLIDATION))
        frac = bronchi.reshape(-1)[flat]
        view = hu.reshape(-1)
        view[flat] += frac * (BRONCHOGRAM_HU - view[flat])
        tissue.reshape(-1)[flat[frac >= 0.5]] = T.AIRWAY_LUMEN
    return labels, ids


def _box(grid: Grid, centre: np.ndarray, reach: float):
    index = grid.phys_to_index(centre)
    pad = reach / np.array(grid.spacing)[::-1]
    lo = np.maximum(np.floor(index - pad).astype(int), 0)
    hi = np.minimum(np.ceil(index + pad).astype(int) + 1, grid.shape)
    return tuple(slice(a, b) for a, b in zip(lo, hi))


def _paint_one(grid, hu, tissue, lungs, labels, ids, lesion: Lesion, rng, keep_denser: bool) -> None:
    box = _box(grid, lesion.centre, 1.35 * lesion.radii.max() + EDGE_MM[lesion.type])
    shape = tuple(s.stop - s.start for s in box)
    if min(shape) <= 0:
        return
    ox, oy, oz = grid.origin
    sx, sy, sz = grid.spacing
    z = (oz + sz * np.arange(box[0].start, box[0].stop) - lesion.centre[2]).reshape(-1, 1, 1)
    y = (oy + sy * np.arange(box[1].start, box[1].stop) - lesion.centre[1]).reshape(1, -1, 1)
    x = (ox + sx * np.arange(box[2].start, box[2].stop) - lesion.centre[0]).reshape(1, 1, -1)
    R = lesion.rotation
    u = [(R[0, i] * x + R[1, i] * y + R[2, i] * z) / lesion.radii[i] for i in range(3)]
    radius = np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
    feature_mm = 0.35 * lesion.radii.mean()
    cells = tuple(max(2, int(round(n * s / max(feature_mm, s)))) for n, s in zip(shape, (sz, sy, sx)))
    radius = radius + 0.22 * smooth_field(rng, shape, cells)  # lobulated, irregular border
    edge = EDGE_MM[lesion.type] / lesion.radii.mean()
    inside_lung = lungs[box] > 0
    weight = np.clip((1.0 - radius) / edge + 0.5, 0.0, 1.0) * inside_lung
    mask = (radius < 1.0) & inside_lung
    texture = smooth_field(rng, shape, tuple(max(2, n // 2) for n in shape))
    target = lesion.hu + (25.0 if lesion.type != CONSOLIDATION else 12.0) * texture
    if lesion.type == CRAZY_PAVING:
        septal_cells = tuple(max(2, int(round(n * s / 9.0))) for n, s in zip(shape, (sz, sy, sx)))
        network = smooth_field(rng, shape, septal_cells)
        target = target + SEPTAL_HU * np.exp(-((network / 0.3) ** 2))
    region = hu[box]
    if keep_denser:  # a halo must not lighten a lesion already painted there
        weight = weight * (labels[box] == 0)
        mask &= labels[box] == 0
    region += weight * (target - region)
    labels[box][mask] = lesion.type
    ids[box][mask] = lesion.id
    tissue[box][mask] = TISSUE_OF_TYPE[lesion.type]


def _bronchograms(grid: Grid, out: np.ndarray, lesion: Lesion, hila: np.ndarray, rng) -> None:
    """Air-filled bronchi running through a consolidation from its hilar side outwards."""
    side = 0 if lesion.centre[0] < 0 else 1
    axis = lesion.centre - hila[side]
    axis /= np.linalg.norm(axis) + 1e-9
    reach = lesion.radii.mean()
    start = lesion.centre - 0.7 * reach * axis
    fork = lesion.centre - 0.1 * reach * axis
    ends = [fork + 0.8 * reach * _tilt(axis, rng) for _ in range(int(rng.integers(2, 4)))]
    p0 = np.array([start] + [fork] * len(ends))
    p1 = np.array([fork] + ends)
    radius = np.array([1.6] + [1.1] * len(ends)) * float(grid.scale[:2].mean())
    draw_segments(grid, out, p0, p1, radius)


def _tilt(axis: np.ndarray, rng) -> np.ndarray:
    v = axis + 0.6 * rng.standard_normal(3)
    return v / np.linalg.norm(v)
