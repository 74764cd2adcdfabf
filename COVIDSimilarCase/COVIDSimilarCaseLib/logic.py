"""COVIDSimilarCase logic: check the query CT and the case index folder before a search."""

from __future__ import annotations

from pathlib import Path

from covidweak.errors import InputError
from covidweak.mrml_params import ParameterizedLogic, describe_image

from .parameters import COVIDSimilarCaseParameters


class COVIDSimilarCaseLogic(ParameterizedLogic):
    MODULE_NAME = "COVIDSimilarCase"
    PARAMETERS = COVIDSimilarCaseParameters

    def validate_inputs(self, volume, index_dir) -> str:
        """One status line when the query CT and index folder are usable; otherwise an error naming the fix.

        The folder is checked before the volume so that a wrong path is
        reported without first converting a large CT.
        """
        from covidweak.validate import check_ct

        folder = check_index_dir(index_dir)
        image = self.image_of(volume, "query CT volume")
        check_ct(image)
        return f"{volume.GetName()}: CT, {describe_image(image)}; case index {folder}"


def check_index_dir(index_dir) -> Path:
    """The case index folder as a Path, or :class:`InputError` for an empty, missing or wrong path."""
    if index_dir is None or not str(index_dir).strip():
        raise InputError("no case index folder selected: choose the folder holding the case index")
    folder = Path(str(index_dir)).expanduser()
    if not folder.exists():
        raise InputError(f"case index folder '{folder}' does not exist: choose an existing folder")
    if not folder.is_dir():
        raise InputError(f"'{folder}' is a file, not a folder: choose the folder that contains it")
    if not any(folder.iterdir()):
        raise InputError(f"case index folder '{folder}' is empty: build the case index there first")
    return folder
