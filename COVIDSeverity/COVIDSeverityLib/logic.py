"""COVIDSeverity logic: tell a chest CT from a chest X-ray before scoring it."""

from __future__ import annotations

from covidweak.mrml_params import ParameterizedLogic, describe_image

from .parameters import COVIDSeverityParameters

MODALITY_NAMES = {"ct": "chest CT", "cxr": "chest X-ray"}


class COVIDSeverityLogic(ParameterizedLogic):
    MODULE_NAME = "COVIDSeverity"
    PARAMETERS = COVIDSeverityParameters

    def classify_input(self, volume) -> str:
        """``"cxr"`` for a single-slice radiograph, ``"ct"`` for a chest CT; errors name the fix."""
        return classify_image(self.image_of(volume, "input CT or chest X-ray volume"))

    def describe_input(self, volume) -> str:
        """Status line: the volume's name, modality and geometry."""
        image = self.image_of(volume, "input CT or chest X-ray volume")
        return f"{volume.GetName()}: {MODALITY_NAMES[classify_image(image)]}, {describe_image(image)}"


def classify_image(image) -> str:
    """Slicer loads a radiograph as a volume one slice thick, so the slice count decides which checks apply."""
    from covidweak.validate import check_ct, check_cxr

    if image.GetDimension() == 2 or image.GetSize()[2] == 1:
        check_cxr(image)
        return "cxr"
    check_ct(image)
    return "ct"
