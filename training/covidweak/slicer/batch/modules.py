"""Making the extension's module Logics importable, in Slicer and with the pip ``slicer-core``.

Inside the Slicer application every module folder is already on ``sys.path``
(``import COVIDWeakSegLib`` just works). With ``slicer-core`` only the MRML
library exists, so the module folders (each holding its ``<Module>Lib``
package) are added here: from ``--modules-dir``, else ``$COVIDWEAK_SLICER_MODULES``,
else the extension checkout this package lives in.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Optional

from ...errors import InputError

MODULES_ENV = "COVIDWEAK_SLICER_MODULES"
MODULE_NAMES = ("COVIDWeakSeg", "COVIDSeverity", "COVIDSimilarCase")


def default_modules_dir() -> Optional[Path]:
    """The folder holding the module folders: the environment variable, else this checkout's root."""
    if os.environ.get(MODULES_ENV):
        return Path(os.environ[MODULES_ENV]).expanduser()
    root = Path(__file__).resolve().parents[4]  # training/covidweak/slicer/batch/ -> the extension root
    return root if (root / MODULE_NAMES[0]).is_dir() else None


def import_module_lib(module: str, modules_dir: Optional[Path] = None):
    """``<module>Lib`` imported, adding ``modules_dir/<module>`` to ``sys.path`` when it is not importable yet."""
    name = f"{module}Lib"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
    folder = Path(modules_dir) if modules_dir else default_modules_dir()
    if folder is None or not (folder / module / name).is_dir():
        raise InputError(f"cannot find the {module} module ({name}): pass --modules-dir with the extension's "
                         f"source folder, or set {MODULES_ENV}")
    sys.path.insert(0, str(folder / module))
    return importlib.import_module(name)
