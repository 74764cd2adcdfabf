"""Neighbourhood Affinity Module losses (Tang et al., MICCAI 2021, Sect. 2.2, Eq. 4-6).

Pixels of D_l are split by sigmoid(D_l) into foreground (> T_fg), background (< T_bg) and
ignored ones. Each centre pixel is compared, by the cosine similarity of its F' features,
with its foreground and background neighbours within radius r:

* L_NFS (Eq. 4): foreground centres should resemble foreground neighbours (1 - cos),
* L_NBS (Eq. 5): background centres should resemble background neighbours (1 - cos),
* L_NFBD (Eq. 6): foreground and background neighbours should differ (cos), both ways.

The loop runs over the ~80 neighbour offsets of the disc, never over pixels: for each offset
the whole feature map is compared with its shifted copy. Per centre pixel only four sums are
needed (cosines to foreground neighbours, to background neighbours, and their counts),
because the inner means of Eq. 4-6 depend on the neighbour's group, not the centre's.

Decisions where Eq. 4-6 are undefined or silent:

* Neighbours are the pixels at distance 0 < d <= r; the centre is not its own neighbour, and
  positions outside the image are no neighbours.
* A centre with no neighbour of the group an inner mean runs over (K = 0) is left out of that
  outer mean, and J counts only the remaining centres.
* Each image gets its own loss (the index i of the equations); the batch loss is the mean over
  images where the set is non-empty, and zero (still connected to the graph) when none is.
* The groups come from sigmoid(D_l) detached: thresholds give no gradient, and NAM shapes F'.
* For several classes a pixel's probability is its largest class probability.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as F

T_FG = 0.1  # foreground threshold on sigmoid(D_l): Sect. 3.4 and Table 1 (T_fg = 0.1)
T_BG = 0.01  # background threshold on sigmoid(D_l): Sect. 3.4 (T_bg = 0.01)
NAM_RADIUS = 5
"""Neighbourhood radius r in map cells: Sect. 2.2 and Sect. 3.4 (r = 5).

In the paper a cell is 8 pixels of a 448-pixel slice of a ~360 mm field, ~6.4 mm, so r = 5
reaches ~32 mm. On the lung box (1.4 mm pixels, stride 4) a cell is 5.6 mm and r = 5 reaches
28 mm: the same neighbourhood, so the paper's value stands. (On the old 128 x 128 whole-slice
input a cell was 22 mm and r = 5 covered a whole lung.)"""
L_NFBD_WEIGHT = 0.5  # weight of L_NFBD in L_all, Eq. 8
COSINE_EPS = 1e-8


class NAMLosses(NamedTuple):
    """Scalar losses of Eq. 4-6."""

    nfs: torch.Tensor
    nbs: torch.Tensor
    nfbd: torch.Tensor

    def total(self) -> torch.Tensor:
        """L_NBS + L_NFS + 0.5 * L_NFBD, the NAM part of L_all (Eq. 8)."""
        return self.nfs + self.nbs + L_NFBD_WEIGHT * self.nfbd


def disc_offsets(radius: int = NAM_RADIUS) -> list[tuple[int, int]]:
    """Offsets (dy, dx) with 0 < dy^2 + dx^2 <= radius^2 (80 for radius 5)."""
    span = range(-radius, radius + 1)
    return [(dy, dx) for dy in span for dx in span if 0 < dy * dy + dx * dx <= radius * radius]


def pixel_groups(d_l: torch.Tensor, t_fg: float = T_FG, t_bg: float = T_BG) -> tuple[torch.Tensor, torch.Tensor]:
    """D_l logits (N, C, h, w) -> float masks (N, h, w) of foreground P_f and background P_b."""
    prob = torch.sigmoid(d_l.detach().float()).amax(dim=1)
    return (prob > t_fg).float(), (prob < t_bg).float()


class NeighbourSums(NamedTuple):
    """Per centre pixel (N, h, w): sums of cosines to fg / bg neighbours and their counts K."""

    cos_fg: torch.Tensor
    cos_bg: torch.Tensor
    k_fg: torch.Tensor
    k_bg: torch.Tensor


def neighbour_sums(features: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, radius: int = NAM_RADIUS) -> NeighbourSums:
    """Features (N, D, h, w) and masks (N, h, w) -> :class:`NeighbourSums`."""
    h, w = features.shape[-2:]
    unit = F.normalize(features.float(), dim=1, eps=COSINE_EPS)
    pad = (radius, radius, radius, radius)
    unit_padded = F.pad(unit, pad)
    groups_padded = F.pad(torch.stack([fg, bg], dim=1), pad)  # zero padding: outside is no group
    cos_sum = unit.new_zeros((features.shape[0], 2, h, w))
    counts = fg.new_zeros((features.shape[0], 2, h, w))
    for dy, dx in disc_offsets(radius):
        rows = slice(radius + dy, radius + dy + h)
        cols = slice(radius + dx, radius + dx + w)
        cos = (unit * unit_padded[:, :, rows, cols]).sum(dim=1, keepdim=True)
        neighbour_groups = groups_padded[:, :, rows, cols]
        cos_sum = cos_sum + cos * neighbour_groups
        counts = counts + neighbour_groups
    return NeighbourSums(cos_sum[:, 0], cos_sum[:, 1], counts[:, 0], counts[:, 1])


def _mean_over_centres(values: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (N, h, w) over ``centres`` per image, then over images that have any.

    Zero, still attached to the graph, when no image has a centre.
    """
    per_image_count = centres.sum(dim=(1, 2))
    per_image_sum = (values * centres).sum(dim=(1, 2))
    present = per_image_count > 0
    if not bool(present.any()):
        return values.sum() * 0.0
    return (per_image_sum[present] / per_image_count[present]).mean()


def nam_losses(
    features: torch.Tensor,
    d_l: torch.Tensor,
    radius: int = NAM_RADIUS,
    t_fg: float = T_FG,
    t_bg: float = T_BG,
) -> NAMLosses:
    """L_NFS, L_NBS and L_NFBD (Eq. 4-6) of F' (N, D, h, w) grouped by D_l (N, C, h, w)."""
    if features.shape[-2:] != d_l.shape[-2:]:
        raise ValueError(f"F' {tuple(features.shape)} and D_l {tuple(d_l.shape)} differ in size")
    with torch.autocast(device_type=features.device.type, enabled=False):
        fg, bg = pixel_groups(d_l, t_fg, t_bg)
        sums = neighbour_sums(features, fg, bg, radius)
        has_fg = sums.k_fg > 0
        has_bg = sums.k_bg > 0
        mean_cos_fg = sums.cos_fg / sums.k_fg.clamp_min(1.0)
        mean_cos_bg = sums.cos_bg / sums.k_bg.clamp_min(1.0)
        nfs = _mean_over_centres(1.0 - mean_cos_fg, fg * has_fg)
        nbs = _mean_over_centres(1.0 - mean_cos_bg, bg * has_bg)
        nfbd = _mean_over_centres(mean_cos_bg, fg * has_bg) + _mean_over_centres(mean_cos_fg, bg * has_fg)
    return NAMLosses(nfs=nfs, nbs=nbs, nfbd=nfbd)
