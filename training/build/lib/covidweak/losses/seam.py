"""SEAM losses of M-SEAM-NAM (Tang et al., MICCAI 2021, Sect. 2.1, Eq. 1-3).

Maps are compared at the small scale: Down(.) resizes a large-scale map to the size of its
small-scale partner (bilinear). ||.||_1 / N_s is the mean absolute difference over the N_s
pixels, summed over classes and averaged over the batch.

Which maps Eq. 2-3 compare (:data:`EQUIVARIANCE_MAPS`) is not said in the paper; it runs the
SEAM of Wang et al. (CVPR 2020), whose equivariance terms compare *normalised* CAMs: ReLU, then
each map scaled to [0, 1] by its own minimum and maximum, then multiplied by the image label,
so an image without the class adds nothing. :func:`equivariance_maps` does that for the
lesion class ("normalised", the default). "logits" compares the raw logit maps as Eq. 2-3 read
literally; those terms then also penalise the logits' size. In a SEAM probe on the phantom, L_cls
stayed near chance with raw logits and fell with normalised maps (docs/status.md).
"probabilities" compares sigmoid maps: the reading for noisy-OR pooling, whose logit maps sit at
-10 to -20 on background (so "logits" is dominated by background that differs in size only,
and the ReLU of "normalised" leaves nothing), while the probability is ~0 there as a normalised
CAM is. Like the normalised maps they are multiplied by the image label.
"peak" divides each sigmoid map by its peak over the slice's bag (the slice itself outside
M-SEAM-NAM's bags): SEAM's max normalisation carried over to noisy-OR probabilities. Plain
probability maps agree best when both scales' maps fade to zero, which noisy-OR allows (one
confident pixel calls a slice); a map scaled to peak 1 cannot fade, so L_ER / L_ECR compare
shapes only, as in SEAM. The bag's peak, not each slice's, because most slices of a positive bag
hold no lesion and their own peak would blow background noise up to 1.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def signed_labels(y: torch.Tensor) -> torch.Tensor:
    """Labels in {0, 1} (lesion absent/present) -> {-1, +1}, the y of Eq. 1 and 7."""
    return 2.0 * y.float() - 1.0


def soft_margin(score: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(-y * score)) elementwise, y in {0, 1}; computed stably with softplus."""
    return F.softplus(-signed_labels(y) * score.float())


def classification_loss(p_l: torch.Tensor, p_s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_cls of Eq. 1: soft-margin loss of both scales' image scores.

    p_l, p_s: (N, C) logits (global averages of C_l, C_s); y: (N, C) in {0, 1}.
    Returns a scalar: summed over the two scales and classes, averaged over the batch.
    """
    per_image = soft_margin(p_l, y) + soft_margin(p_s, y)
    return per_image.sum(dim=1).mean()


EQUIVARIANCE_MAPS = ("normalised", "logits", "probabilities", "peak")
NORM_EPS = 1e-5  # keeps an all-zero map at zero instead of 0 / 0


def normalise_map(cam: torch.Tensor) -> torch.Tensor:
    """SEAM's map normalisation: (N, C, h, w) logits -> ReLU, then (x - min) / (max - min) per map, in [0, 1]."""
    x = F.relu(cam.float())
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    return F.relu(x - low - NORM_EPS) / (high - low + NORM_EPS)


def bag_peak_normalise(probability: torch.Tensor, bag_size: int = 1) -> torch.Tensor:
    """(N, C, h, w) maps in [0, 1], N = B * bag_size consecutive bag slices -> each divided by its
    bag's maximum per class (NORM_EPS keeps an all-zero bag at zero)."""
    n, c, h, w = probability.shape
    bags = probability.reshape(n // bag_size, bag_size, c, h, w)
    peak = bags.amax(dim=(1, 3, 4), keepdim=True)
    return (bags / (peak + NORM_EPS)).reshape(n, c, h, w)


def equivariance_maps(c_l, c_s, d_l, d_s, y: torch.Tensor, kind: str = "normalised", bag_size: int = 1):
    """The four maps Eq. 2-3 compare, for ``kind`` in :data:`EQUIVARIANCE_MAPS`.

    c_*, d_*: (N, C, h, w) logit maps; y: (N, C) per-image labels in {0, 1} (for a bag, its
    label repeated for each slice); bag_size: slices per bag ("peak" normalises per bag).
    Returns (c_l, c_s, d_l, d_s), unchanged for "logits".
    """
    if kind not in EQUIVARIANCE_MAPS:
        raise ValueError(f"unknown equivariance maps '{kind}': use one of {', '.join(EQUIVARIANCE_MAPS)}")
    if kind == "logits":
        return c_l, c_s, d_l, d_s
    present = y.float().reshape(y.shape[0], -1)[:, :, None, None]
    scale = {"probabilities": torch.sigmoid, "normalised": normalise_map,
             "peak": lambda m: bag_peak_normalise(torch.sigmoid(m), bag_size)}[kind]
    return tuple(scale(m.float()) * present for m in (c_l, c_s, d_l, d_s))


def down(large: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Down(.) of Eq. 2-3: (N, C, h_l, w_l) -> (N, C, h_s, w_s) with the size of ``like``."""
    if large.shape[-2:] == like.shape[-2:]:
        return large
    return F.interpolate(large, size=like.shape[-2:], mode="bilinear", align_corners=True)


def mean_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b||_1 / N_s for (N, C, h, w) maps: per-pixel mean, class sum, batch mean -> scalar."""
    return (a.float() - b.float()).abs().mean(dim=(2, 3)).sum(dim=1).mean()


def equivariant_regularization_loss(
    c_l: torch.Tensor, c_s: torch.Tensor, d_l: torch.Tensor, d_s: torch.Tensor
) -> torch.Tensor:
    """L_ER of Eq. 2: |Down(C_l) - C_s| + |Down(D_l) - D_s|, each per pixel of the small scale.

    c_l, d_l: (N, C, h_l, w_l); c_s, d_s: (N, C, h_s, w_s). Returns a scalar.
    """
    return mean_l1(down(c_l, c_s), c_s) + mean_l1(down(d_l, d_s), d_s)


def equivariant_cross_regularization_loss(
    c_l: torch.Tensor, c_s: torch.Tensor, d_l: torch.Tensor, d_s: torch.Tensor
) -> torch.Tensor:
    """L_ECR of Eq. 3: |Down(C_l) - D_s| + |C_s - Down(D_l)|, each per pixel of the small scale.

    Shapes as in :func:`equivariant_regularization_loss`. Returns a scalar.
    """
    return mean_l1(down(c_l, d_s), d_s) + mean_l1(c_s, down(d_l, c_s))
