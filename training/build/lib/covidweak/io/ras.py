"""SimpleITK's LPS image geometry as the 4x4 IJKToRAS matrix that Slicer (and NIfTI's qform) use.

SimpleITK places voxel index (i, j, k) at ``origin + D @ (spacing * ijk)`` in LPS; Slicer stores
the same mapping in RAS. With ``F = diag(-1, -1, 1)`` (LPS <-> RAS),
``IJKToRAS = [[F D S, F o], [0, 1]]``. No MRML here: lesion tables give RAS centres with it too.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def ijk_to_ras_matrix(image: sitk.Image) -> np.ndarray:
    """The 4x4 IJKToRAS matrix of a 3-D SimpleITK image."""
    direction = np.reshape(image.GetDirection(), (3, 3))
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ direction @ np.diag(image.GetSpacing())
    matrix[:3, 3] = LPS_TO_RAS @ np.asarray(image.GetOrigin())
    return matrix


def set_geometry_from_ijk_to_ras(image: sitk.Image, matrix: np.ndarray) -> sitk.Image:
    """Give ``image`` (3-D) the origin, spacing and direction that a 4x4 IJKToRAS matrix describes."""
    lps = LPS_TO_RAS @ np.asarray(matrix)[:3, :]
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    if np.any(spacing <= 0):
        raise InputError("the volume's IJKToRAS matrix has a zero-length axis: its geometry is damaged; reload it")
    image.SetSpacing(spacing.tolist())
    image.SetDirection((lps[:, :3] / spacing).ravel().tolist())
    image.SetOrigin(lps[:, 3].tolist())
    return image
