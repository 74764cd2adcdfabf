"""COVIDWeakSeg logic: check a chest CT and segment its lungs into a new segmentation node.

No qt here: the same methods serve the panel, the Python console, headless
scripts and the tests.
"""

from __future__ import annotations

from covidweak.errors import InputError
from covidweak.mrml_params import ParameterizedLogic, describe_image

from .parameters import COVIDWeakSegParameters

LUNG_NAMES = {1: "Right lung", 2: "Left lung"}
LUNG_COLORS = {1: (0.50, 0.68, 0.95), 2: (0.95, 0.72, 0.45)}


class COVIDWeakSegLogic(ParameterizedLogic):
    MODULE_NAME = "COVIDWeakSeg"
    PARAMETERS = COVIDWeakSegParameters

    def validate_input(self, volume) -> str:
        """One status line describing a usable CT, or :class:`CovidWeakError` naming the fix."""
        from covidweak.validate import check_ct

        image = self.image_of(volume, "input CT volume")
        check_ct(image)
        return f"{volume.GetName()}: CT, {describe_image(image)}"

    def check_thresholds(self, t_fg: float, t_bg: float) -> str:
        """Status line for a valid threshold pair; T_bg must stay below T_fg or nothing is left uncertain."""
        if not 0.0 <= t_bg < t_fg <= 1.0:
            raise InputError(f"T_bg={t_bg} must be below T_fg={t_fg} (both in 0..1): lower T_bg or raise T_fg")
        return f"T_fg={t_fg:.2f}, T_bg={t_bg:.3f}"

    def segment_lungs(self, volume, progress=None):
        """Segment the lungs of ``volume`` into a NEW segmentation node ("Right lung", "Left lung").

        Existing nodes are never reused or overwritten; the new node is also
        remembered as the module's output. ``self.last_lung_volumes_ml`` holds
        the lung volumes for the status line.
        """
        from covidweak.lungs import segment_lungs
        from covidweak.mrml import segmentation_node_from_labels
        from covidweak.validate import check_ct

        image = self.image_of(volume, "input CT volume")
        check_ct(image)
        labels = segment_lungs(image, progress=progress)
        volumes = lung_volumes_ml(labels)
        if not any(volumes.values()):
            raise InputError(f"no lung found in '{volume.GetName()}': check that it is a chest CT in Hounsfield units")
        node = segmentation_node_from_labels(
            labels, LUNG_NAMES, LUNG_COLORS, scene=self.scene,
            name=f"{volume.GetName()} lungs", reference_volume=volume,
        )
        self.last_lung_volumes_ml = volumes
        self.parameters.output_segmentation = node
        return node

    @staticmethod
    def lungs_status(node, volumes_ml: dict[str, float]) -> str:
        parts = ", ".join(f"{name} {ml:.0f} mL" for name, ml in volumes_ml.items())
        return f"Created '{node.GetName()}': {parts}"


def lung_volumes_ml(labels) -> dict[str, float]:
    """Volume of each lung label in millilitres (1 mL = 1000 mm^3)."""
    import numpy as np
    import SimpleITK as sitk

    counts = np.bincount(sitk.GetArrayViewFromImage(labels).ravel(), minlength=3)
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    return {name: float(counts[label]) * voxel_ml for label, name in LUNG_NAMES.items()}
