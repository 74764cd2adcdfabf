"""Class lists and the network of the diagnosis task (Hu et al., IEEE Access 2020, Sect. II-D/E and II-G).

The network is :class:`covidweak.models.mscam.MultiScaleCAM` with K output classes: class maps at
Conv3, Conv4 and Conv5, global max pooling, scores summed into one softmax (the "joint
classifier" of Table 3). ``arch`` (stored with the weights) holds the class list, the width
and the aggregation's ``top_k``, plus what evaluation needs to know about the training run:
whether contrast augmentation was on and the patient split's seed and fractions.
"""

from __future__ import annotations

from typing import Any, Optional

from ..models.mscam import MultiScaleCAM

METHOD = "diagnosis"
CLASSES = ("covid", "cap", "normal")
"""Three-way classes in the order of ``diagnosis.json``."""
CLASS_TASKS = {
    "3-way": CLASSES,
    # Binary tasks of Table 3: (negative, positive); the positive class is the one the paper's
    # sensitivity refers to (the disease, or COVID-19 against CAP).
    "normal-covid": ("normal", "covid"),
    "normal-cap": ("normal", "cap"),
    "cap-covid": ("cap", "covid"),
}
PAPER_NAMES = {"3-way": "Joint classifier (NP/CAP/COVID-19)", "normal-covid": "NP/COVID-19",
               "normal-cap": "NP/CAP", "cap-covid": "COVID-19/CAP"}
TOP_K = 3
"""Slices averaged into the patient probability (see :mod:`.aggregate`)."""
WIDTH = {"paper": 1.0, "light": 0.25}
"""Channel multiplier of MultiScaleCAM: Hu et al.'s VGG widths, or a quarter for CPU."""
DEFAULT_ARCH: dict[str, Any] = {"classes": list(CLASSES), "width": WIDTH["paper"], "top_k": TOP_K}


def class_task(name: str) -> tuple[str, ...]:
    """The class list of a task name of :data:`CLASS_TASKS`; ValueError for an unknown name."""
    if name not in CLASS_TASKS:
        raise ValueError(f"unknown class task '{name}': choose one of {', '.join(CLASS_TASKS)}")
    return CLASS_TASKS[name]


def task_name(classes) -> str:
    """The :data:`CLASS_TASKS` name of a class list (as stored in ``arch``)."""
    for name, members in CLASS_TASKS.items():
        if tuple(classes) == members:
            return name
    raise ValueError(f"classes {list(classes)} are none of the diagnosis tasks {', '.join(CLASS_TASKS)}")


def build_diagnosis_model(method: str, arch: Optional[dict] = None) -> MultiScaleCAM:
    """A fresh multi-scale classifier for ``arch["classes"]`` (registered in ``OTHER_BUILDERS``)."""
    arch = {**DEFAULT_ARCH, **(arch or {})}
    task_name(arch["classes"])
    return MultiScaleCAM(num_classes=len(arch["classes"]), width=float(arch["width"]))
