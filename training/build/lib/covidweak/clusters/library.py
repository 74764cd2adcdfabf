"""Fit lesion-type clusters on a library of studies, and apply them to a new CT.

Fitting (Wu et al. Sect. 3.2.3): every study's predicted-positive slices give lesions and
their features (:func:`covidweak.clusters.ct.find_lesions`); k-means groups them into K
clusters (K given, or the elbow of :mod:`.kmeans`), each lesion gets the score of Eq. 10 and
display coordinates from SVD + t-SNE. Applying: a new CT's lesions are assigned to the
nearest centre with the same score, and placed in the library's t-SNE map
(:func:`covidweak.clusters.embedding.place`).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError, ModelError
from ..progress import Progress
from .ct import DEFAULT_BATCH_SIZE, CtLesions, find_lesions, lesion_feature_size
from .embedding import fit_svd, fit_tsne, place, reduce
from .kmeans import choose_k, fit_kmeans, lesion_scores
from .matching import confusion, type_table
from .store import ClusterModel, type_name

PHANTOM_TYPES = 3
"""The phantom's lesion types: 1 GGO, 2 crazy paving, 3 consolidation."""


def fecnn_identity(loaded) -> dict:
    """The FeCNN weights a cluster model depends on: name (the registry name of shipped weights, else
    the file's path, so that applying finds them by default), sha256, classes and feature size."""
    from ..models.weights import models_dir

    path = Path(loaded.path)
    shipped = path.parent.resolve() == models_dir().resolve()
    return {"name": path.stem if shipped else str(path.resolve()), "sha256": loaded.sha256,
            "classes": int(loaded.arch.get("classes", 2)), "feature_size": lesion_feature_size(loaded)}


def check_compatible(model: ClusterModel, loaded) -> None:
    """ModelError when ``loaded`` (a FeCNN) did not make the features ``model`` was fitted on."""
    size = lesion_feature_size(loaded)
    if size != model.feature_size:
        raise ModelError(f"the cluster model expects {model.feature_size}-dim lesion features but FeCNN "
                         f"'{loaded.path.name}' gives {size}: pass the --weights the model was fitted with "
                         f"({model.info.get('fecnn', {}).get('name', '?')})")
    expected = model.info.get("fecnn", {}).get("sha256")
    if expected and expected != loaded.sha256:
        raise ModelError(f"the cluster model was fitted with FeCNN weights {expected[:12]}..., not "
                         f"{loaded.sha256[:12]}... ({loaded.path.name}): pass --weights "
                         f"{model.info['fecnn'].get('name', 'FILE')} or refit the clusters")


def assign(features: np.ndarray, model: ClusterModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New lesions (M, F) -> cluster (M,), Eq. 10 score of that cluster (M,), t-SNE point (M, 2)."""
    if len(features) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros((0, 2))
    scores = lesion_scores(features, model.centres)
    clusters = scores.argmax(axis=1)
    points = place(reduce(features, model.svd_components), model.library_svd, model.library_tsne)
    return clusters, scores[np.arange(len(clusters)), clusters], points


def table_rows(study_id: str, found: CtLesions, clusters, scores, points) -> list[dict]:
    """lesions.csv rows of one study."""
    return [{"study_id": study_id, **{k: v for k, v in row.items() if k != "type"}, "cluster": int(c),
             "score": round(float(s), 5), "tsne_x": round(float(p[0]), 4), "tsne_y": round(float(p[1]), 4),
             "type": type_name(row["type"])}
            for row, c, s, p in zip(found.rows, clusters, scores, points)]


def library_lesions(records: Sequence, loaded, device, batch_size: int = DEFAULT_BATCH_SIZE,
                    progress: Optional[Progress] = None) -> list[tuple[str, CtLesions]]:
    """(study_id, lesions) of every record; true types from each record's lesion mask when it has one."""
    from ..io import read_ct, read_image

    progress = progress or Progress()
    out = []
    for done, record in enumerate(records):
        progress.update(done, len(records), f"lesions of {record.study_id}")
        lungs = read_image(record.lung_mask_path) if record.lung_mask_path else None
        types = read_image(record.lesion_mask_path) if record.lesion_mask_path else None
        out.append((record.study_id, find_lesions(read_ct(record.ct_path), loaded, lungs, types, device, batch_size)))
    progress.update(len(records), len(records), "lesions")
    return out


def fit_clusters(studies: list[tuple[str, CtLesions]], k, seed: int = 0) -> tuple[ClusterModel, list[dict]]:
    """K-means, scores and t-SNE of the pooled lesions of ``studies``; the model and its lesions.csv rows."""
    features = np.concatenate([found.features for _, found in studies]) if studies else np.zeros((0, 0))
    if len(features) < 2:
        raise InputError(f"the library has {len(features)} lesion(s); clustering needs at least 2: add studies "
                         "with lesions (or check the FeCNN weights find any)")
    k, selection = choose_k(features, k, seed)
    kmeans = fit_kmeans(features, k, seed)
    components = fit_svd(features, seed)
    library_svd = reduce(features, components)
    library_tsne = fit_tsne(library_svd, seed)
    scores = lesion_scores(features, kmeans.cluster_centers_)
    rows, start = [], 0
    for study_id, found in studies:
        stop = start + len(found.rows)
        clusters = kmeans.labels_[start:stop]
        rows += table_rows(study_id, found, clusters, scores[np.arange(start, stop), clusters], library_tsne[start:stop])
        start = stop
    types = np.array([row["type"] for _, found in studies for row in found.rows], dtype=np.int64)
    known = types > 0
    info = {"k_selection": selection, "seed": seed, "lesions": len(features), "studies": len(studies),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if known.any():
        table = confusion(types[known], kmeans.labels_[known], PHANTOM_TYPES, k)
        info["type_table"] = type_table(table, [type_name(t) for t in range(1, PHANTOM_TYPES + 1)])
    model = ClusterModel(centres=kmeans.cluster_centers_.astype(np.float32), svd_components=components.astype(np.float32),
                         library_svd=library_svd.astype(np.float32), library_tsne=library_tsne.astype(np.float32),
                         info=info)
    return model, rows


def fit_library(data: Path, loaded, k, seed: int = 0, device="cpu", batch_size: int = DEFAULT_BATCH_SIZE,
                progress: Optional[Progress] = None) -> tuple[ClusterModel, list[dict]]:
    """Fit on every study of a dataset folder or manifest (see :func:`covidweak.datasets.open_dataset`)."""
    from ..datasets import open_dataset

    records = open_dataset(Path(data))
    if not records:
        raise InputError(f"{data} holds no studies: give a dataset folder or manifest with CTs")
    model, rows = fit_clusters(library_lesions(records, loaded, device, batch_size, progress), k, seed)
    model.info["fecnn"] = fecnn_identity(loaded)
    model.info["data"] = str(data)
    return model, rows


def study_stem(path: Path) -> str:
    """A CT's study id for lesions.csv: the file name without its image extension, or the DICOM folder's name."""
    from ..io.files import image_suffix

    path = Path(path)
    suffix = image_suffix(path)
    return path.name[:-len(suffix)] if suffix and not path.is_dir() else path.name
