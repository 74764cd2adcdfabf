"""Losses of M-SEAM-NAM (SEAM, NAM, multi-instance) and of the multi-scale CAM baseline."""

from .focal import class_balanced_weights, focal_loss
from .mil import bag_score, make_bags, mil_classification_loss
from .nam import NAM_RADIUS, T_BG, T_FG, NAMLosses, nam_losses
from .seam import classification_loss, equivariant_cross_regularization_loss, equivariant_regularization_loss
from .total import MSeamNamLosses, cam_pretraining_loss, m_seam_nam_loss

__all__ = [
    "NAM_RADIUS", "T_BG", "T_FG", "MSeamNamLosses", "NAMLosses", "bag_score", "cam_pretraining_loss",
    "class_balanced_weights", "classification_loss", "equivariant_cross_regularization_loss",
    "equivariant_regularization_loss", "focal_loss", "m_seam_nam_loss", "make_bags",
    "mil_classification_loss", "nam_losses",
]
