"""Weakly supervised lesion segmentation of chest CT: what training and inference share."""
