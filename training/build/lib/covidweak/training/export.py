"""Turn a training run into a shipped weight file and its entry in ``models.json``.

The entry records where the weights came from -- task, config, training data and its
manifest hash, the metrics of the exported epoch -- so a model in ``Resources/Models``
can be traced back to the run that made it.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Optional

from .. import __version__
from ..errors import InputError
from ..io.atomic import replacing, write_text
from ..models.weights import REGISTRY_NAME, models_dir, read_registry, save_weights, sha256_of
from .checkpoint import load_checkpoint
from .config import read_yaml
from .runs import RunFolder, read_metrics
from .tasks import get_task

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Shipped weight files stay at most 16 MB, so the extension's repository stays small."""


def _epoch_metrics(folder: RunFolder, epoch: int) -> dict[str, float]:
    if not folder.metrics.is_file():
        return {}
    return {row["metric"]: row["value"] for row in read_metrics(folder.metrics)
            if row["split"] == "val" and row["epoch"] == epoch}


def _write_registry(folder: Path, registry: dict) -> None:
    write_text(folder / REGISTRY_NAME, json.dumps(registry, indent=2) + "\n")


def split_record(config: dict) -> dict:
    """The patient split of a run as evaluation re-creates it: ``{"seed", "fractions"}``.

    ``split_by_patient(records, fractions, seed)`` with the run's config seed gives the run's
    train / val / test patients, so ``evaluate --split val|test`` scores exactly those.
    """
    return {"seed": config.get("seed"), "fractions": (config.get("data") or {}).get("fractions")}


def calibrated(spec, hu_floor: Optional[float], validation: Optional[dict]) -> dict:
    """``spec.preprocess`` with the inference settings of :func:`export_run` added: the HU floor for
    weak-seg and FeCNN weights (:mod:`covidweak.weakseg.calibration`, :func:`covidweak.clusters.ct.attenuating_pieces`),
    the validation choices for weak-seg weights only."""
    from ..models.factory import METHODS
    from ..weakseg.calibration import check_hu_floor, chosen_min_lesion_ml, offset_from_validation

    preprocess = dict(spec.preprocess)
    if hu_floor is None and validation is None:
        return preprocess
    if hu_floor is not None and spec.method not in (*METHODS, "fecnn"):
        raise InputError(f"--hu-floor sets the lesion maps of weak-seg and FeCNN weights; this run trains {spec.method}: "
                         f"leave it out")
    if validation is not None and spec.method not in METHODS:
        raise InputError(f"--t-fg-from calibrates weak-seg weights; this run trains {spec.method}: leave it out")
    if hu_floor is not None:
        check_hu_floor(hu_floor)
        preprocess["lesion_hu_floor"] = float(hu_floor)
    if validation is not None:
        preprocess["logit_offset"] = offset_from_validation(validation, spec.method, preprocess.get("lesion_hu_floor"))
        preprocess["min_lesion_ml"] = chosen_min_lesion_ml(validation, spec.method)
    return preprocess


def export_run(run_dir: Path, name: str, checkpoint: str = "best", folder: Optional[Path] = None,
               half: bool = False, overwrite: bool = False, hu_floor: Optional[float] = None,
               validation: Optional[dict] = None) -> dict:
    """Write ``<folder>/<name>.pt`` from a run's ``best`` or ``last`` checkpoint; return its registry entry.

    For weak-seg weights, ``hu_floor`` sets the attenuation gate and a validation report of
    ``covidweak evaluate weakseg`` sets the logit offset and the minimum lesion volume
    (:mod:`covidweak.weakseg.calibration`):
    inference settings chosen after training, so they come with the export, not the config.
    """
    run = RunFolder(run_dir)
    if checkpoint not in ("best", "last"):
        raise InputError(f"--checkpoint {checkpoint}: use best or last")
    if not run.config.is_file():
        raise InputError(f"{run.root} is not a training run folder (no config.yaml); give the --out of covidweak train")
    if not name or Path(name).name != name or name.startswith("."):
        raise InputError(f"model name '{name}' must be a plain file name without folders, e.g. cxr-lungs-demo")
    config = read_yaml(run.config)
    task = get_task(config.get("task", ""))
    payload = load_checkpoint(run.best if checkpoint == "best" else run.last, task.name)

    folder = Path(folder) if folder is not None else models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    file_name = f"{name}.pt"
    registry = read_registry(folder)
    clash = [e for e in registry["models"] if e.get("name") == name or e.get("file") == file_name]
    if (clash or (folder / file_name).exists()) and not overwrite:
        raise InputError(f"model '{name}' already exists in {folder}: choose another --name or pass --overwrite")

    model = task.build_model(payload["config"])
    model.load_state_dict(payload["model"])
    epoch = payload["position"]["epoch"]
    metrics = _epoch_metrics(run, epoch)
    spec = task.export_spec(payload["config"], metrics)
    preprocess = calibrated(spec, hu_floor, validation)
    info = json.loads(run.run_json.read_text(encoding="utf-8")) if run.run_json.is_file() else {}
    training_data = {"path": info.get("data"), "studies": info.get("studies"),
                     "manifest_hash": info.get("data_manifest_hash"), "split": "split.json of the run"}
    entry = {
        "name": name,
        "file": file_name,
        "method": spec.method,
        "task": task.name,
        "checkpoint": checkpoint,
        "epoch": epoch,
        "metrics": metrics,
        "training_data": training_data,
        "config": payload["config"],
        "dtype": "float16" if half else "float32",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "covidweak_version": __version__,
        "git_commit": info.get("git_commit"),
    }
    # An oversized file must not replace a good one: the size is checked before the rename.
    with replacing(folder / file_name) as staging:
        save_weights(staging, model, spec.method, spec.arch, preprocess,
                     info={**{k: entry[k] for k in ("task", "epoch", "metrics", "training_data", "created")},
                           **split_record(payload["config"])}, half=half)
        size = staging.stat().st_size
        if size > MAX_FILE_BYTES:
            hint = "train a lighter model" if half else "pass --half or train a lighter model"
            raise InputError(f"weight file would be {size / 2**20:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MB "
                             f"limit: {hint}")
    entry["sha256"] = sha256_of(folder / file_name)
    entry["size_bytes"] = size
    registry["models"] = [e for e in registry["models"] if e not in clash] + [entry]
    _write_registry(folder, registry)
    return entry
