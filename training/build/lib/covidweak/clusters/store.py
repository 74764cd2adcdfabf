"""The fitted lesion-cluster model folder and the lesions.csv table.

A model folder holds plain files, no pickle::

    cluster_model.npz    centres (K, F), svd_components (c, F), library_svd (N, c), library_tsne (N, 2)
    cluster_model.json   K and how it was chosen, feature size F, the FeCNN weights (name, sha256),
                         library size, and the lesion-type table when the library had true types
    lesions.csv          the library's lesions (columns :data:`LESION_CSV_COLUMNS`)

Applying a model needs the same FeCNN weights that made its features; the sha256 is checked.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError
from ..phantom.lesions import TYPE_NAMES

MODEL_FORMAT = "covidweak-lesion-clusters"
MODEL_FORMAT_VERSION = 1
ARRAYS_NAME, INFO_NAME, LESIONS_NAME, LABELS_NAME = ("cluster_model.npz", "cluster_model.json", "lesions.csv",
                                                     "lesion_labels.nii.gz")
ARRAY_KEYS = ("centres", "svd_components", "library_svd", "library_tsne")
LESION_CSV_COLUMNS = ("study_id", "lesion_id", "centroid_r", "centroid_a", "centroid_s", "cluster", "score",
                      "tsne_x", "tsne_y", "type")


@dataclass
class ClusterModel:
    """What applying the clusters to a new case needs (arrays as in the module docstring)."""

    centres: np.ndarray
    svd_components: np.ndarray
    library_svd: np.ndarray
    library_tsne: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def feature_size(self) -> int:
        return int(self.centres.shape[1])


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """InputError naming the outputs that exist, unless ``overwrite``."""
    for path in paths:
        if path.parent.exists() and not path.parent.is_dir():
            raise InputError(f"--out {path.parent} is a file: give a folder")
    existing = [p.name for p in paths if p.exists()]
    if existing and not overwrite:
        raise InputError(f"{paths[0].parent} already holds {', '.join(existing)}: choose another --out or pass --overwrite")


def model_paths(folder: Path) -> list[Path]:
    return [Path(folder) / name for name in (ARRAYS_NAME, INFO_NAME, LESIONS_NAME)]


def type_name(code: int) -> str:
    """The phantom's lesion type name of a code 1-3, '' for unknown (0)."""
    return TYPE_NAMES.get(int(code), "")


def lesions_csv_text(rows: list[dict]) -> str:
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=LESION_CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return stream.getvalue()


def save_model(folder: Path, model: ClusterModel, rows: list[dict], overwrite: bool = False) -> None:
    """Write the three files of a model folder, each atomically."""
    from ..io.atomic import replacing, write_text

    folder = Path(folder)
    refuse_existing(model_paths(folder), overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    with replacing(folder / ARRAYS_NAME, suffix=".npz") as temp:
        np.savez(temp, **{key: getattr(model, key) for key in ARRAY_KEYS})
    info = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, **model.info,
            "k": int(model.centres.shape[0]), "feature_size": model.feature_size}
    write_text(folder / INFO_NAME, json.dumps(info, indent=2) + "\n")
    write_text(folder / LESIONS_NAME, lesions_csv_text(rows))


def load_model(folder: Path) -> ClusterModel:
    """Read a model folder; ModelError when a file is missing, damaged or inconsistent."""
    folder = Path(folder)
    if not (folder / INFO_NAME).is_file() or not (folder / ARRAYS_NAME).is_file():
        raise ModelError(f"{folder} is not a lesion-cluster model (no {INFO_NAME} / {ARRAYS_NAME}): "
                         "fit one with `covidweak clusters --data DIR --out MODEL_DIR`")
    try:
        info = json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))
        with np.load(folder / ARRAYS_NAME, allow_pickle=False) as arrays:
            loaded = {key: arrays[key] for key in ARRAY_KEYS}
    except (OSError, ValueError, KeyError) as error:
        raise ModelError(f"cluster model in {folder} is damaged ({type(error).__name__}: {error}); fit it again") from None
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT or info.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelError(f"{folder / INFO_NAME} is not a version-{MODEL_FORMAT_VERSION} lesion-cluster model; fit it again")
    model = ClusterModel(**loaded, info=info)
    if info.get("feature_size") != model.feature_size or model.svd_components.shape[1] != model.feature_size:
        raise ModelError(f"cluster model in {folder} is inconsistent: feature size {info.get('feature_size')} in "
                         f"{INFO_NAME}, {model.feature_size} in {ARRAYS_NAME}; fit it again")
    return model
