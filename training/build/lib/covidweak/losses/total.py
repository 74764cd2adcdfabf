"""L_all of M-SEAM-NAM (Tang et al., MICCAI 2021, Eq. 8) and the CAM pre-training loss.

L_all = L_cls + L_ER + L_ECR + L_NBS + L_NFS + 0.5 * L_NFBD, where L_cls is Eq. 1 for
slice-level labels and Eq. 7 for multi-instance bags.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .mil import bag_soft_margin, mil_classification_loss
from .nam import NAM_RADIUS, T_BG, T_FG, nam_losses
from .seam import (
    classification_loss,
    equivariance_maps,
    equivariant_cross_regularization_loss,
    equivariant_regularization_loss,
    soft_margin,
)


class MSeamNamLosses(NamedTuple):
    """Every term of Eq. 8 (scalars) and their weighted sum ``total``."""

    total: torch.Tensor
    cls: torch.Tensor
    er: torch.Tensor
    ecr: torch.Tensor
    nfs: torch.Tensor
    nbs: torch.Tensor
    nfbd: torch.Tensor


def m_seam_nam_loss(
    output,
    y: torch.Tensor,
    bag_size: Optional[int] = None,
    use_nam: bool = True,
    radius: int = NAM_RADIUS,
    t_fg: float = T_FG,
    t_bg: float = T_BG,
    equivariance: str = "normalised",
) -> MSeamNamLosses:
    """Eq. 8 for a :class:`~covidweak.models.seam.SEAMOutput`.

    y: (N, C) slice labels in {0, 1}, or with ``bag_size`` (B, C) bag labels for the N = B *
    bag_size stacked slices (Eq. 7). ``use_nam=False`` gives the plain SEAM objective; its NAM
    terms are then zero. ``equivariance`` picks the maps of L_ER and L_ECR
    (:func:`~covidweak.losses.seam.equivariance_maps`); in a bag every slice takes the bag's label.
    """
    if bag_size is None:
        cls = classification_loss(output.p_l, output.p_s, y)
        slice_y = y
    else:
        cls = mil_classification_loss(output.p_l, output.p_s, y, bag_size)
        slice_y = y.reshape(y.shape[0], -1).repeat_interleave(bag_size, dim=0)
    maps = equivariance_maps(output.c_l, output.c_s, output.d_l, output.d_s, slice_y, equivariance, bag_size or 1)
    er = equivariant_regularization_loss(*maps)
    ecr = equivariant_cross_regularization_loss(*maps)
    if use_nam:
        nam = nam_losses(output.features, output.d_l, radius, t_fg, t_bg)
        nam_total, nfs, nbs, nfbd = nam.total(), nam.nfs, nam.nbs, nam.nfbd
    else:
        nam_total = nfs = nbs = nfbd = cls.new_zeros(())
    return MSeamNamLosses(total=cls + er + ecr + nam_total, cls=cls, er=er, ecr=ecr, nfs=nfs, nbs=nbs, nfbd=nfbd)


def cam_pretraining_loss(score: torch.Tensor, y: torch.Tensor, bag_size: Optional[int] = None) -> torch.Tensor:
    """CAM pre-training loss (Sect. 2.1 and 2.3) for a :class:`~covidweak.models.cam.CAMOutput` score.

    score: (N, C) image logits; y: (N, C) slice labels, or (B, C) bag labels with ``bag_size``.
    Single-scale soft margin of Eq. 1, or Eq. 7 on bags. Returns a scalar.
    """
    if bag_size is None:
        return soft_margin(score, y).sum(dim=1).mean()
    return bag_soft_margin(score, y, bag_size).sum(dim=1).mean()
