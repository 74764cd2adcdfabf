"""Optional dependencies: which pip extra brings each one, and the one-line error when it is missing.

A plain ``pip install covidweak`` (and Slicer's first-use install) brings what inference needs.
Training, headless MRML and the tests need more:

* ``covidweak[train]``: PyYAML (run configs) and TensorBoard (training logs);
* ``covidweak[slicer]``: slicer-core, the MRML scene ``covidweak batch`` runs the module Logics on;
* ``covidweak[test]``: both, plus pytest and PySide6 for the panel tests.

Standard library only: the CLI consults it when an import has already failed.
"""

from __future__ import annotations

import importlib
from typing import Optional

from .errors import CovidWeakError

EXTRA_OF = {
    "yaml": "train",
    "tensorboard": "train",
    "covidweak.training": "train",  # left out of the Slicer extension's copy of the package
    "slicer": "slicer",
    "vtk": "slicer",
}
"""Module (top-level name, or the training package) -> the extra that installs it."""


class MissingExtraError(CovidWeakError):
    """A feature whose optional dependencies are not installed."""


def missing_extra_error(module_name: Optional[str], what: str) -> Optional[MissingExtraError]:
    """The error to show when importing ``module_name`` failed while running ``what``; None if no extra brings it."""
    if not module_name:
        return None
    key = next((k for k in EXTRA_OF if module_name == k or module_name.startswith(k + ".")), None)
    if key is None:
        return None
    return MissingExtraError(f"{what} needs '{key}', which this installation lacks: "
                             f"pip install 'covidweak[{EXTRA_OF[key]}]'")


def require(module_name: str, what: str) -> None:
    """Import ``module_name`` (a key of :data:`EXTRA_OF`), or raise :class:`MissingExtraError` naming its extra."""
    try:
        importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise missing_extra_error(error.name, what) or error from None
