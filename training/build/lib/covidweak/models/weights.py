"""Weight files and the model registry (``Resources/Models/models.json``).

A weight file is a ``torch.save`` dict::

    {"format": "covidweak-weights", "format_version": 1, "method": "mseamnam",
     "arch": {...}, "preprocess": {...}, "state_dict": {...}, "info": {...}}

``arch`` rebuilds the network through :func:`covidweak.models.factory.build_model`;
``preprocess`` records what the network was trained on (input size, HU window), so
inference prepares slices the same way. The registry lists shipped files with their
sha256; loading a registered name checks it, so a damaged download never runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import ModelError
from ..io.atomic import replacing

FORMAT = "covidweak-weights"
FORMAT_VERSION = 1
REGISTRY_NAME = "models.json"
MODELS_ENV = "COVIDWEAK_MODELS_DIR"


@dataclass
class LoadedModel:
    """A network ready for inference plus what is known about it."""

    model: Any  # torch.nn.Module, in eval mode
    method: str
    arch: dict
    preprocess: dict
    sha256: str
    path: Path
    info: dict = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def models_dir() -> Path:
    """Where shipped weights live: ``$COVIDWEAK_MODELS_DIR``, else the repository's
    ``Resources/Models`` next to ``training/``, else ``covidweak/Models`` when the package
    was copied into a Slicer extension together with its weights."""
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV])
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parents[1] / "Resources" / "Models", package / "Models"):
        if candidate.is_dir():
            return candidate
    return package.parents[1] / "Resources" / "Models"


def read_registry(folder: Optional[Path] = None) -> dict:
    """The registry dict ``{"format_version": 1, "models": [entry, ...]}`` (empty if absent)."""
    path = (folder or models_dir()) / REGISTRY_NAME
    if not path.exists():
        return {"format_version": 1, "models": []}
    try:
        registry = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ModelError(f"model registry {path} is not valid JSON ({error}); restore it from the repository") from None
    if not isinstance(registry, dict) or not isinstance(registry.get("models"), list):
        raise ModelError(f"model registry {path} has no 'models' list; restore it from the repository")
    return registry


def registry_entry(name: str, folder: Optional[Path] = None) -> dict:
    folder = folder or models_dir()
    for entry in read_registry(folder)["models"]:
        if entry.get("name") == name:
            return entry
    known = ", ".join(e.get("name", "?") for e in read_registry(folder)["models"]) or "none"
    raise ModelError(f"no model named '{name}' in {folder / REGISTRY_NAME} (known: {known}); "
                     f"train one with `covidweak train` and `covidweak export`, or pass a weight file")


def save_weights(path: Path, model, method: str, arch: dict, preprocess: dict, info: Optional[dict] = None,
                 half: bool = False) -> str:
    """Write a weight file atomically and return its sha256.

    ``half`` stores floating-point tensors as float16, halving the file (shipped files stay
    under 16 MB); :func:`load_weights` casts them back to the network's float32.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "method": method, "arch": dict(arch),
               "preprocess": dict(preprocess), "info": dict(info or {}), "state_dict": state}
    with replacing(path) as temp:
        torch.save(payload, temp)
    return sha256_of(path)


def _read_payload(path: Path) -> dict:
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged zip/pickle
        raise ModelError(f"weight file {path} is corrupt or not a covidweak weight file ({type(error).__name__}); "
                         f"download or train it again") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path} is not a covidweak weight file; give a file written by `covidweak export`")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path} has weight format {payload.get('format_version')}, this covidweak reads "
                         f"{FORMAT_VERSION}; re-export it with this version")
    return payload


def load_lesion_model(method: str, weights=None, device: str = "auto") -> "LoadedModel":
    """The lesion network of ``weights`` (default: the shipped ``<method>-light``) on ``device``.

    One of :data:`covidweak.models.METHODS`; a file trained for another method is refused.
    """
    from ..device import resolve_device
    from ..errors import InputError
    from .factory import METHODS

    if method not in METHODS:
        raise InputError(f"unknown method '{method}': choose {', '.join(METHODS)}")
    return load_weights(weights or f"{method}-light", method=method, device=str(resolve_device(device)))


def load_weights(source: str | Path, method: Optional[str] = None, device: str = "cpu",
                 folder: Optional[Path] = None) -> LoadedModel:
    """Load a registered model name or a weight file path into its network.

    ``method``: the method the caller needs; a file trained for another is refused
    rather than run. Registered files are checked against the registry's sha256.
    """
    from .factory import build_model

    path, expected_sha = Path(source), None
    if not path.suffix and not path.exists():
        entry = registry_entry(str(source), folder)
        path, expected_sha = (folder or models_dir()) / entry["file"], entry.get("sha256")
    if not path.is_file():
        raise ModelError(f"weight file {path} not found; train it with `covidweak train` + `covidweak export`, "
                         f"or pass --weights FILE")
    digest = sha256_of(path)
    if expected_sha and digest != expected_sha:
        raise ModelError(f"weight file {path} is damaged: sha256 {digest[:12]}... differs from the registry's "
                         f"{expected_sha[:12]}...; restore it from the repository or re-export it")
    payload = _read_payload(path)
    if method is not None and payload["method"] != method:
        raise ModelError(f"{path} holds '{payload['method']}' weights, not '{method}'; choose a matching file or method")
    try:
        model = build_model(payload["method"], payload["arch"])
        reference = model.state_dict()
        # float16 files (save_weights(half=True)) come back in the network's own dtype.
        state = {k: v.to(reference[k].dtype) if k in reference and v.is_floating_point() else v
                 for k, v in payload["state_dict"].items()}
        model.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as error:
        raise ModelError(f"{path} does not fit its declared network ({str(error).splitlines()[0][:120]}); "
                         f"re-export it") from None
    model.eval().to(device)
    return LoadedModel(model=model, method=payload["method"], arch=payload["arch"], preprocess=payload["preprocess"],
                       sha256=digest, path=path, info=payload.get("info", {}))
