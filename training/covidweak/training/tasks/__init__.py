"""Task names -> task classes, imported only when asked for.

Every task of the project is listed, including those whose module is not in this
version yet: asking for one gives a one-line "not available yet" error instead of an
import traceback, and its paper config in ``training/configs/`` still documents
the settings it will train with.
"""

from __future__ import annotations

import importlib

from ...errors import InputError

_WEAKSEG = "covidweak.training.tasks.weakseg"

TASKS: dict[str, str] = {
    "cam-pretrain": f"{_WEAKSEG}:CamPretrainTask",
    "seam": f"{_WEAKSEG}:SeamTask",
    "seam-nam": f"{_WEAKSEG}:SeamNamTask",
    "mseamnam": f"{_WEAKSEG}:MSeamNamTask",
    "mscam": f"{_WEAKSEG}:MultiScaleCamTask",
    "unet": f"{_WEAKSEG}:UNetTask",
    "cxr-lungs": "covidweak.training.tasks.cxr_lungs:CxrLungsTask",
    "ct-lungs": "covidweak.training.tasks.ct_lungs:CtLungsTask",
    "fecnn": "covidweak.training.tasks.fecnn:FeCnnTask",
    "severity": "covidweak.training.tasks.severity:SeverityTask",
    "severity-selftrain": "covidweak.training.tasks.severity:SeveritySelfTrainTask",
    "cxr-embed": "covidweak.training.tasks.severity:CxrEmbedTask",
    "ducn": "covidweak.training.tasks.ducn:DuCnTask",
    "diagnosis": "covidweak.training.tasks.diagnosis:DiagnosisTask",
}
"""Task name -> ``"module:Class"``. The class is built without arguments."""


def task_class(name: str):
    """The class registered as ``name``; InputError when unknown or not shipped in this version."""
    if name not in TASKS:
        raise InputError(f"unknown task '{name}': choose one of {', '.join(TASKS)}")
    module_name, _, class_name = TASKS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        module = None
    cls = getattr(module, class_name, None)
    if cls is None:
        available = ", ".join(n for n in TASKS if is_available(n)) or "none"
        raise InputError(f"task '{name}' is not available yet in this version (available: {available}); "
                         "pick an available task")
    return cls


def is_available(name: str) -> bool:
    module_name, _, class_name = TASKS[name].partition(":")
    try:
        return hasattr(importlib.import_module(module_name), class_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        return False


def get_task(name: str):
    """A fresh instance of the task named ``name``."""
    return task_class(name)()
