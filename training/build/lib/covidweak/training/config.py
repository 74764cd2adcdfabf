"""Training configs: YAML files, ``--set key=value`` overrides and validation on load.

A config is one nested dict. The framework owns the top-level keys of
:data:`FRAMEWORK_DEFAULTS`; a task owns ``model``, ``params`` and ``preprocess``,
whose keys and types come from the task's ``defaults``. Layers, later wins:
framework defaults, task defaults, the YAML file, ``--set`` overrides. Every key
of a layer must already exist with a compatible type, so a typo
(``optim.l r``) or a wrong value (``epochs: ten``) is an :class:`InputError`
naming the key instead of a silently ignored setting.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Optional

from ..errors import InputError
from ..losses.focal import CLASS_BALANCE
from ..losses.seam import EQUIVARIANCE_MAPS
from ..models.fecnn import LAM_LEVELS, LAM_THRESHOLDS, LESION_DESCRIPTORS, LEVEL_POOLINGS, SCORE_ACTIVATIONS
from ..models.resnet38 import FREEZE_BN

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
"""``training/configs`` of the repository: one ``<task>.yaml`` per task with its paper's settings."""

TASK_SECTIONS = ("model", "params", "preprocess")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "linear", "step", "poly")
AMP_MODES = ("none", "bf16")

FRAMEWORK_DEFAULTS: dict[str, Any] = {
    "task": "",
    "seed": 0,
    "data": {"fractions": [0.7, 0.15, 0.15], "max_studies": None},
    "epochs": 1,
    "max_steps": None,  # optimiser updates; ends training early and sets the schedule's length
    "batch_size": 8,  # global: split over ranks under torchrun
    "accumulate": 1,
    # clip_norm: largest global gradient norm per update (null: no clipping)
    "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "betas": [0.9, 0.999], "weight_decay": 0.0, "clip_norm": None},
    "schedule": {"name": "constant", "step_epochs": 20, "gamma": 0.5, "power": 0.9},
    "amp": "none",
    "channels_last": False,
    "compile": False,
    "early_stopping": {"patience": None},
    "num_workers": 0,
    "log_every": 10,
    "keep_last": 3,
}

NULLABLE_TYPES: dict[str, tuple[type, ...]] = {
    "data.max_studies": (int,),
    "max_steps": (int,),
    "optim.clip_norm": (int, float),
    "params.epoch_samples": (int,),
    "early_stopping.patience": (int,),
}
"""Keys whose default is null, with the type a non-null value must have."""

MIXED_TYPES: dict[str, tuple[type, ...]] = {"model.freeze_bn": (bool, str)}
"""Keys that take values of more than one type (see their CHOICES)."""

CHOICES = {"optim.name": OPTIMIZERS, "schedule.name": SCHEDULES, "amp": AMP_MODES, "model.freeze_bn": FREEZE_BN,
           "params.equivariance": EQUIVARIANCE_MAPS, "params.balance": CLASS_BALANCE, "model.lam_level": LAM_LEVELS,
           "model.score_activation": SCORE_ACTIVATIONS, "model.level_pooling": LEVEL_POOLINGS, "preprocess.lesion_descriptor": LESION_DESCRIPTORS,
           "preprocess.lam_threshold": LAM_THRESHOLDS}
POSITIVE_INTS = ("epochs", "batch_size", "accumulate", "log_every", "keep_last", "max_steps",
                 "data.max_studies", "early_stopping.patience", "params.epoch_samples")
POSITIVE_NUMBERS = ("optim.clip_norm", "model.pcm_power")


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path as given when it exists, else ``training/configs/<name>[.yaml]``."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    for candidate in (CONFIG_DIR / f"{name_or_path}.yaml", CONFIG_DIR / str(name_or_path)):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))) or "none"
    raise InputError(f"config '{name_or_path}' not found as a file or in {CONFIG_DIR} (known: {known}); check the name")


def read_yaml(path: Path) -> dict:
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(f"cannot read config {path} ({error.strerror}); check the path") from None
    except yaml.YAMLError as error:
        raise InputError(f"config {path} is not valid YAML ({str(error).splitlines()[0]}); fix its syntax") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InputError(f"config {path} must be a mapping of keys to values; fix its top level")
    return document


def add_config_arguments(parser, config_default: str) -> None:
    """``--config`` and repeatable ``--set KEY=VALUE`` for a command that builds a training config."""
    parser.add_argument("--config", help=f"YAML file, or a name in training/configs/ such as cxr-lungs.demo "
                                         f"(default: {config_default})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, dotted for sections: --set optim.lr=0.01 (repeatable)")


def parse_overrides(items: Iterable[str]) -> dict:
    """``["optim.lr=0.01", "amp=bf16"]`` -> nested dict; values are YAML scalars (or lists)."""
    import yaml

    nested: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--set '{item}' is not key=value; write e.g. --set optim.lr=0.01")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise InputError(f"--set {key}: value '{text}' is not a YAML scalar; quote it or fix it") from None
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {key}: '{part}' is set both as a value and as a section; set one of them")
        node[parts[-1]] = value
    return nested


def _type_name(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def _check_value(key: str, value: Any, default: Any, source: str) -> Any:
    """``value`` converted to the default's type, or InputError naming ``key``."""
    if value is None:
        if default is None or key in NULLABLE_TYPES:
            return None
        raise InputError(f"{source}: '{key}' must not be null; give a {type(default).__name__}")
    if default is None:
        expected = NULLABLE_TYPES.get(key)
        if expected is None:
            return value
    elif key in MIXED_TYPES:
        expected = MIXED_TYPES[key]
    elif isinstance(default, bool):
        expected = (bool,)
    elif isinstance(default, (int, float)):
        expected = (int, float) if isinstance(default, float) else (int,)
    elif isinstance(default, (list, tuple)):
        expected = (list, tuple)
    else:
        expected = (type(default),)
    # bool is an int in Python, but "epochs: true" is a mistake, not 1.
    if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
        raise InputError(f"{source}: '{key}' must be {_type_name(expected)}, got {value!r}; fix the value")
    if isinstance(default, float):
        value = float(value)
    if isinstance(value, tuple):
        value = list(value)
    if key in CHOICES and value not in CHOICES[key]:
        raise InputError(f"{source}: '{key}' is '{value}', choose one of {', '.join(map(str, CHOICES[key]))}")
    if key in POSITIVE_INTS and value < 1:
        raise InputError(f"{source}: '{key}' must be at least 1, got {value}; fix the value")
    if key in POSITIVE_NUMBERS and value <= 0:
        raise InputError(f"{source}: '{key}' must be above 0, got {value}; fix the value or set it to null")
    return value


def merge(base: dict, layer: dict, source: str, prefix: str = "") -> dict:
    """``base`` updated by ``layer``; every key of ``layer`` must exist in ``base``."""
    merged = copy.deepcopy(base)
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(str(k) for k in base)) or "none"
            raise InputError(f"{source}: unknown key '{dotted}' (known here: {known}); fix or remove it")
        default = base[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise InputError(f"{source}: '{dotted}' must be a section of keys, got {value!r}; fix the value")
            merged[key] = merge(default, value, source, f"{dotted}.")
        else:
            merged[key] = _check_value(dotted, value, default, source)
    return merged


def task_defaults(task) -> dict:
    """The task's ``{"model": ..., "params": ..., "preprocess": ...}`` (attribute or method)."""
    defaults = task.defaults() if callable(task.defaults) else task.defaults
    unknown = set(defaults) - set(TASK_SECTIONS)
    if unknown:
        raise InputError(f"task '{task.name}' defaults have unknown section(s) {sorted(unknown)}; "
                         f"use only {', '.join(TASK_SECTIONS)}")
    return {section: copy.deepcopy(dict(defaults.get(section, {}))) for section in TASK_SECTIONS}


def build_config(task, config_file: Optional[str | Path] = None, overrides: Iterable[str] = ()) -> dict:
    """The full, validated config for ``task``: defaults, then ``config_file``, then ``--set`` overrides."""
    config = {**copy.deepcopy(FRAMEWORK_DEFAULTS), **task_defaults(task), "task": task.name}
    if config_file is not None:
        path = resolve_config_path(config_file)
        document = read_yaml(path)
        if document.get("task", task.name) != task.name:
            raise InputError(f"config {path} is for task '{document['task']}', not '{task.name}'; "
                             f"pick the matching config")
        config = merge(config, document, f"config {path.name}")
    config = merge(config, parse_overrides(overrides), "--set")
    if config["task"] != task.name:
        raise InputError(f"--set task={config['task']} contradicts the task '{task.name}'; leave task out of --set")
    fractions = config["data"]["fractions"]
    if len(fractions) != 3 or any(not isinstance(f, (int, float)) or f < 0 for f in fractions) \
            or abs(sum(fractions) - 1) > 1e-6 or fractions[0] == 0:
        raise InputError(f"'data.fractions' {fractions} must be three non-negative numbers (train, val, test) "
                         "summing to 1 with train > 0")
    return config


def dump_config(config: dict) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
