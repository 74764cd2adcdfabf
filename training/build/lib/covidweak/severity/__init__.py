"""Severity scores: Kim et al.'s chest X-ray 3x2 zone array (``cxr_*``) and the CT zone involvement score (``ct``)."""
