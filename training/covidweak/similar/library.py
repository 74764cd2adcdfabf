"""Filling a case index with DuCN embeddings and answering a similar-case query.

DuCN Sect. 2.2: the library's images are embedded by the recommendation child and kept as an
index; a query is embedded alike and compared by Euclidean distance, nearest first. Storage and
search are :class:`covidweak.index.CaseIndex`; this module decides what goes in and what a
query returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError
from ..records import StudyRecord
from .embed import DEFAULT_BATCH_SIZE, embed_study

DEFAULT_WEIGHTS = "ducn-light"


def load_ducn(weights: Optional[str], device: str = "auto"):
    """(LoadedModel of ``weights`` (default ``ducn-light``), refused unless trained as DuCN; the torch
    device name it was put on, ``device`` "auto" resolved)."""
    from ..device import resolve_device
    from ..models import load_weights

    device = str(resolve_device(device))
    return load_weights(weights or DEFAULT_WEIGHTS, method="ducn", device=device), device


def study_metadata(record: StudyRecord) -> dict:
    """What the index keeps about a study: ids, diagnosis, the CT's absolute path, follow-up number, and
    its lesions in words when the dataset lists them (a phantom's meta.json), so that a results
    table shows what a suggested case holds (:func:`~covidweak.similar.similarity.describe_lesions`)."""
    from .similarity import describe_lesions

    lesions = record.extra.get("lesions")
    return {"study_id": record.study_id, "patient_id": record.patient_id, "diagnosis": record.diagnosis,
            "source_path": str(Path(record.ct_path).resolve()), "study_index": int(record.study_index),
            "lesions": describe_lesions(lesions) if lesions is not None else "not recorded"}


def records_from_paths(paths: Sequence[Path], diagnosis: str = "unknown") -> list[StudyRecord]:
    """Studies named on a command line: a dataset folder or manifest gives its records; a CT file or
    DICOM folder is one study whose study_id and patient_id are its name (file stem), with ``diagnosis``."""
    from ..datasets import detect_kind, open_dataset
    from ..datasets.common import volume_stem

    records: list[StudyRecord] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path} does not exist: give a CT file, a DICOM folder or a dataset")
        try:
            kind = detect_kind(path)
        except InputError:
            kind = None
        if kind is not None:
            records.extend(open_dataset(path, kind))
            continue
        name = (volume_stem(path.name) or path.stem) if path.is_file() else path.name
        records.append(StudyRecord(study_id=name, patient_id=name, diagnosis=diagnosis, ct_path=path, source="ct"))
    ids = [r.study_id for r in records]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise InputError(f"study id '{repeated[0]}' is given twice: index each study once (rename one file)")
    return records


def add_records(index, records: Sequence[StudyRecord], loaded, device: str = "cpu",
                batch_size: int = DEFAULT_BATCH_SIZE, progress=None) -> int:
    """Embed each record not yet in ``index`` and add it; returns how many were added.

    Every study is committed as soon as it is embedded, so an interrupted call leaves a valid index
    and calling again with the same records continues where it stopped. A record's lung mask is
    used when it has one; otherwise the lungs are segmented.
    """
    from ..index import pending_studies
    from ..io import read_ct, read_image

    todo = pending_studies(index, records)
    if progress is not None:
        progress.update(0, len(todo), "indexing")
    for done, record in enumerate(todo, start=1):
        if progress is not None:
            progress.check()  # a cancel between two studies stops before the next one is embedded
        lungs = read_image(record.lung_mask_path) if record.lung_mask_path is not None else None
        embedding = embed_study(loaded, read_ct(record.ct_path), lungs, batch_size, device)
        index.add_study(study_metadata(record), embedding.vectors, embedding.slice_numbers.tolist())
        if progress is not None:
            progress.update(done, len(todo), f"indexed {record.study_id}")
    return len(todo)


def query_ranking(n_slices: int) -> str:
    """How studies are ranked for a query of ``n_slices`` slices: a whole study by the studies' centroids
    (the index's default, chosen on validation; see :mod:`covidweak.index.case_index`), one slice by the
    library slice nearest to it, since one image has no study to summarise."""
    return "slice_pair" if n_slices == 1 else "aggregate"


def similar_cases(index, query_vectors, query_slices, k: int) -> list[dict]:
    """The k most similar library studies of a query, with ``query_slice`` as the query CT's slice number.

    query_vectors: (n, 128) embeddings of the query's lung slices; query_slices: (n,) their slice numbers.
    Ranked as :func:`query_ranking` says.
    """
    results = index.search_studies(query_vectors, k, ranking=query_ranking(len(query_vectors)))
    for result in results:
        result["query_slice"] = int(query_slices[result["query_slice"]])
    return results


def similar_document(query_path: Path, n_slices: int, chosen_slice: Optional[int], index, index_path: Path,
                     k: int, results: list[dict]) -> dict:
    """The ``similar.json`` contract: query, index, k and the ranked results."""
    keys = ("rank", "study_id", "patient_id", "diagnosis", "lesions", "distance", "source_path", "query_slice",
            "match_slice")
    return {"query": {"path": str(Path(query_path).resolve()), "slices": int(n_slices), "slice": chosen_slice},
            "index": {"path": str(Path(index_path).resolve()), "model_sha256": index.model_sha256,
                      "studies": len(index)},
            "k": int(k), "ranking": query_ranking(n_slices),
            "results": [{key: result[key] for key in keys} for result in results]}
