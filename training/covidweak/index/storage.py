"""The case index on disk: a JSON header, two append-only CSV tables and two float32 matrices.

Folder layout (``g`` is the generation, bumped only when a study is removed)::

    index.json          header, the commit point: format, format_version, model_sha256, dim,
                        generation, studies, slices and the valid byte length of each CSV
    vectors-g.f32       one row per lung slice: raw little-endian float32, shape (slices, dim)
    aggregates-g.f32    one row per study: its aggregate embedding, shape (studies, dim)
    slices-g.csv        one row per vector row: study_id, slice
    studies-g.csv       one row per study: study_id, patient_id, diagnosis, source_path, num_slices, metadata
    faiss-g-M.ivf       optional cache of the approximate search index (see search.py), never read as truth

Why append-only files with the valid length in the header: adding a study to a library of
a million slices must not rewrite the whole library, and a process killed at any moment
must leave the previous state loadable. An add appends to the four files (after cutting
off whatever an earlier killed add left behind) and then atomically replaces
``index.json``; until that replace, readers see the old header, which names only the old
prefix of each file. A removal writes the next generation's files complete and then
replaces the header. Bytes past the valid prefix are therefore never corruption; a file
shorter than its prefix is. The matrices are raw rather than ``.npy`` because an ``.npy``
header states the shape and so cannot be appended to. One writer at a time: CaseIndex refuses to
write from a view older than the current index.json.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import write_text

FORMAT_NAME = "covidweak-case-index"
FORMAT_VERSION = 2
"""2: a study's aggregate is the plain mean of its slice embeddings (1 stored the L2-normalised mean)."""
HEADER_NAME = "index.json"
VECTOR_DTYPE = np.dtype("<f4")
STUDY_COLUMNS = ("study_id", "patient_id", "diagnosis", "source_path", "num_slices", "metadata")
SLICE_COLUMNS = ("study_id", "slice")
GENERATION_FILE = re.compile(r"^(vectors|aggregates)-(\d+)\.f32$|^(slices|studies)-(\d+)\.csv$|^faiss-(\d+)-(\d+)\.ivf$")
"""Every file name the index keeps; anything else in the folder belongs to someone else."""
TEMP_FILE = re.compile(r"^\.(index\.json\.\w+|faiss-\d+-\d+\.ivf)\.tmp$")
"""Temporary files of a header or cache write that a kill interrupted."""

REBUILD_HINT = "rebuild it with `covidweak index build` into a new folder"


@dataclass
class Header:
    """The parsed ``index.json``: what the valid state of the folder is."""

    model_sha256: str
    dim: int
    generation: int = 0
    studies: int = 0
    slices: int = 0
    study_bytes: int = 0
    slice_bytes: int = 0

    def to_json(self) -> dict:
        return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "model_sha256": self.model_sha256,
                "dim": self.dim, "distance": "euclidean", "generation": self.generation, "studies": self.studies,
                "slices": self.slices, "bytes": {"studies": self.study_bytes, "slices": self.slice_bytes}}


@dataclass
class Tables:
    """The whole index in memory, as read from or written to one generation's files.

    vectors (slices, dim) float32; aggregates (studies, dim) float32; slice_numbers (slices,) int64;
    studies: one dict per study with the keys of STUDY_COLUMNS (metadata parsed to a dict), in row order,
    each study's slices contiguous in ``vectors`` in the same order.
    """

    vectors: np.ndarray
    aggregates: np.ndarray
    slice_numbers: np.ndarray
    studies: list[dict] = field(default_factory=list)


def file_names(generation: int) -> dict[str, str]:
    return {"vectors": f"vectors-{generation}.f32", "aggregates": f"aggregates-{generation}.f32",
            "slices": f"slices-{generation}.csv", "studies": f"studies-{generation}.csv"}


def cache_name(generation: int, slices: int) -> str:
    """The FAISS cache file of one state: adds raise ``slices`` and removals raise ``generation``."""
    return f"faiss-{generation}-{slices}.ivf"


def write_header(folder: Path, header: Header) -> None:
    """Atomically replace ``index.json`` (the commit point of every change)."""
    write_text(folder / HEADER_NAME, json.dumps(header.to_json(), indent=2) + "\n", durable=True)


def study_rows_bytes(studies: list[dict]) -> bytes:
    """studies.csv rows (no header line) for ``studies``, UTF-8."""
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    for study in studies:
        writer.writerow([study["study_id"], study["patient_id"], study["diagnosis"], study["source_path"],
                         study["num_slices"], json.dumps(study["metadata"], sort_keys=True)])
    return stream.getvalue().encode("utf-8")


def slice_rows_bytes(study_ids: list[str], slice_numbers: list[np.ndarray]) -> bytes:
    """slices.csv rows (no header line): one per slice of each study, in row order."""
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    for study_id, numbers in zip(study_ids, slice_numbers):
        writer.writerows((study_id, int(number)) for number in numbers)
    return stream.getvalue().encode("utf-8")


def _csv_header_bytes(columns: tuple[str, ...]) -> bytes:
    return (",".join(columns) + "\n").encode("utf-8")


def write_generation(folder: Path, header: Header, tables: Tables) -> Header:
    """Write ``tables`` as generation ``header.generation`` (complete files, fsynced) and return the header
    that names them; the caller commits it with :func:`write_header`."""
    names = file_names(header.generation)
    study_bytes = _csv_header_bytes(STUDY_COLUMNS) + study_rows_bytes(tables.studies)
    ids = [study["study_id"] for study in tables.studies]
    split = np.cumsum([study["num_slices"] for study in tables.studies])[:-1]
    slice_bytes = _csv_header_bytes(SLICE_COLUMNS) + slice_rows_bytes(ids, np.split(tables.slice_numbers, split))
    contents = {"vectors": np.ascontiguousarray(tables.vectors, VECTOR_DTYPE).tobytes(),
                "aggregates": np.ascontiguousarray(tables.aggregates, VECTOR_DTYPE).tobytes(),
                "slices": slice_bytes, "studies": study_bytes}
    for key, data in contents.items():
        with open(folder / names[key], "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    return Header(header.model_sha256, header.dim, header.generation, len(tables.studies),
                  len(tables.slice_numbers), len(study_bytes), len(slice_bytes))


def append_rows(folder: Path, header: Header, vectors: np.ndarray, aggregates: np.ndarray,
                study_bytes: bytes, slice_bytes: bytes, new_studies: int) -> Header:
    """Append to the current generation's files, after cutting each back to its valid prefix, and return
    the header of the grown state (not yet committed). vectors (n, dim), aggregates (new_studies, dim)."""
    names = file_names(header.generation)
    row_bytes = header.dim * VECTOR_DTYPE.itemsize
    appends = [("vectors", header.slices * row_bytes, np.ascontiguousarray(vectors, VECTOR_DTYPE).tobytes()),
               ("aggregates", header.studies * row_bytes, np.ascontiguousarray(aggregates, VECTOR_DTYPE).tobytes()),
               ("slices", header.slice_bytes, slice_bytes), ("studies", header.study_bytes, study_bytes)]
    for key, valid, data in appends:
        with open(folder / names[key], "r+b") as stream:
            stream.truncate(valid)
            stream.seek(valid)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    return Header(header.model_sha256, header.dim, header.generation, header.studies + new_studies,
                  header.slices + len(vectors), header.study_bytes + len(study_bytes),
                  header.slice_bytes + len(slice_bytes))


def remove_stale_files(folder: Path, header: Header) -> None:
    """Delete the files of other generations (left by a removal or by a killed write), stale caches and
    the temporary files of killed writes."""
    keep = set(file_names(header.generation).values()) | {cache_name(header.generation, header.slices)}
    for path in folder.iterdir():
        if (GENERATION_FILE.match(path.name) and path.name not in keep) or TEMP_FILE.match(path.name):
            path.unlink(missing_ok=True)


def read_header(folder: Path) -> Header:
    """Parse and check ``index.json``; InputError (one line, with the fix) for every way it can be wrong."""
    if not folder.exists():
        raise InputError(f"case index {folder} does not exist: build one with `covidweak index build --out {folder}`")
    if not folder.is_dir():
        raise InputError(f"case index {folder} is a file, not an index folder: give the folder `covidweak index build` made")
    path = folder / HEADER_NAME
    if not path.exists():
        if not any(folder.iterdir()):
            raise InputError(f"case index {folder} is empty: build one with `covidweak index build --out {folder}`")
        raise InputError(f"{folder} holds no {HEADER_NAME}, so it is not a covidweak case index: "
                         "give the folder `covidweak index build` made")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is corrupt (not valid JSON: {error.msg}): {REBUILD_HINT}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise InputError(f"{path} is not a covidweak case index header: give the folder `covidweak index build` made")
    if data.get("format_version") != FORMAT_VERSION:
        raise InputError(f"case index {folder} has format version {data.get('format_version')!r}, this covidweak "
                         f"reads version {FORMAT_VERSION}: {REBUILD_HINT}")
    try:
        header = Header(str(data["model_sha256"]), int(data["dim"]), int(data["generation"]), int(data["studies"]),
                        int(data["slices"]), int(data["bytes"]["studies"]), int(data["bytes"]["slices"]))
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"{path} is corrupt (missing or bad field {error}): {REBUILD_HINT}") from None
    if min(header.dim, header.generation, header.studies, header.slices, header.study_bytes, header.slice_bytes) < 0 \
            or header.dim == 0:
        raise InputError(f"{path} is corrupt (negative or zero size): {REBUILD_HINT}")
    return header


def _check_length(path: Path, length: int, what: str) -> None:
    """InputError when ``path`` is missing or shorter than the ``length`` bytes the header counts."""
    if not path.exists():
        raise InputError(f"case index file {path} is missing: {REBUILD_HINT}")
    size = path.stat().st_size
    if size < length:
        raise InputError(f"{what} {path} is truncated ({size} bytes, the header needs {length}): {REBUILD_HINT}")


def _read_matrix(path: Path, rows: int, dim: int) -> np.ndarray:
    """The first ``rows`` rows (rows, dim) float32 of a raw matrix file."""
    _check_length(path, rows * dim * VECTOR_DTYPE.itemsize, "vectors file")
    return np.fromfile(path, dtype=VECTOR_DTYPE, count=rows * dim).reshape(rows, dim).astype(np.float32, copy=False)


def _read_csv(path: Path, length: int, columns: tuple[str, ...]) -> list[list[str]]:
    _check_length(path, length, "table")
    with open(path, "rb") as stream:
        data = stream.read(length)
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"table {path} is corrupt ({error}): {REBUILD_HINT}") from None
    if not rows or tuple(rows[0]) != columns or any(len(row) != len(columns) for row in rows[1:]):
        raise InputError(f"table {path} is corrupt (expected columns {','.join(columns)}): {REBUILD_HINT}")
    return rows[1:]


def read_tables(folder: Path, header: Header) -> Tables:
    """Load the valid prefix of every file of the header's generation and check they agree with each other."""
    names = file_names(header.generation)
    vectors = _read_matrix(folder / names["vectors"], header.slices, header.dim)
    aggregates = _read_matrix(folder / names["aggregates"], header.studies, header.dim)
    study_rows = _read_csv(folder / names["studies"], header.study_bytes, STUDY_COLUMNS)
    slice_rows = _read_csv(folder / names["slices"], header.slice_bytes, SLICE_COLUMNS)
    if len(study_rows) != header.studies or len(slice_rows) != header.slices:
        raise InputError(f"case index {folder} is corrupt ({len(study_rows)} studies and {len(slice_rows)} slices "
                         f"in the tables, {header.studies} and {header.slices} in the header): {REBUILD_HINT}")
    try:
        studies = [{"study_id": row[0], "patient_id": row[1], "diagnosis": row[2], "source_path": row[3],
                    "num_slices": int(row[4]), "metadata": json.loads(row[5])} for row in study_rows]
        slice_numbers = np.array([int(row[1]) for row in slice_rows], dtype=np.int64)
        owners = np.repeat(np.array([study["study_id"] for study in studies], dtype=object),
                           [study["num_slices"] for study in studies])
    except ValueError as error:  # json.JSONDecodeError is a ValueError, as are negative slice counts
        raise InputError(f"case index {folder} has a corrupt table ({error}): {REBUILD_HINT}") from None
    listed = np.array([row[0] for row in slice_rows], dtype=object)
    if len(owners) != header.slices or not np.array_equal(owners, listed):
        raise InputError(f"case index {folder} is corrupt (slices.csv does not list each study's slices "
                         f"in studies.csv order): {REBUILD_HINT}")
    return Tables(vectors, aggregates, slice_numbers, studies)
