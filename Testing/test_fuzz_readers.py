"""Fuzzing the file readers and parsers with hypothesis (issue #7).

Every reader that takes a user's file must either return a result or raise
:class:`~covidweak.errors.CovidWeakError` (a one-line message the CLI prints);
any other exception is a traceback in front of the user. Inputs: random bytes
and mutated headers for :func:`covidweak.io.read_ct`, random CSV text for the
manifest and phantom readers, random JSON and damaged files for
:meth:`covidweak.index.CaseIndex.open`.

Runs are bounded and reproducible for CI: ``max_examples`` 50 per target,
``derandomize=True`` (the same examples every run), no deadline (the 2-core CI
machine is slow and shared).
"""

from __future__ import annotations

import json
import shutil
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covidweak.datasets import open_dataset
from covidweak.datasets.manifest import read_manifest
from covidweak.errors import CovidWeakError
from covidweak.index import CaseIndex
from covidweak.io import read_ct, read_image

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

NIFTI_HEADER_BYTES = 352  # NIfTI-1: 348-byte header + 4-byte extension flag


def accepts_or_refuses(read, *args):
    """Call ``read``; a CovidWeakError is a proper refusal, anything else fails the test."""
    try:
        return read(*args)
    except CovidWeakError as error:
        assert "\n" not in str(error), f"multi-line message: {error!r}"
        return None


def chest_image() -> sitk.Image:
    """A small valid CT (16x16x16, int16 HU: air, body, lung)."""
    hu = np.full((16, 16, 16), -1000, dtype=np.int16)
    hu[:, 3:13, 2:14] = 40
    hu[:, 5:11, 4:7] = -850
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing((0.7, 0.7, 2.5))
    return image


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of one valid CT per format: the seeds that mutations start from."""
    folder = tmp_path_factory.mktemp("seeds")
    files = {}
    for suffix in (".nii", ".nii.gz", ".nrrd", ".mha"):
        sitk.WriteImage(chest_image(), str(folder / f"ct{suffix}"))
        files[suffix] = (folder / f"ct{suffix}").read_bytes()
    return files


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".nii", ".nii.gz", ".nrrd", ".mha"]))
def test_read_ct_on_random_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"ct{suffix}"
        path.write_bytes(data)
        accepts_or_refuses(read_ct, path)


@FUZZ
@given(suffix=st.sampled_from([".nii", ".nii.gz", ".nrrd", ".mha"]),
       edits=st.lists(st.tuples(st.integers(0, NIFTI_HEADER_BYTES - 1), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 4000)))
@pytest.mark.slow
def test_read_ct_on_mutated_files(valid_files, suffix, edits, cut):
    """Byte edits in the header region (where the geometry and data type live), and truncation."""
    data = bytearray(valid_files[suffix])
    if suffix == ".nii.gz":
        import gzip

        data = bytearray(gzip.decompress(bytes(data)))
    for offset, value in edits:
        data[offset % len(data)] = value
    if cut is not None:
        data = data[:cut]
    if suffix == ".nii.gz":
        import gzip

        data = gzip.compress(bytes(data))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"ct{suffix}"
        path.write_bytes(bytes(data))
        image = accepts_or_refuses(read_ct, path)
        if image is not None:
            assert image.GetDimension() == 3 and image.GetPixelID() == sitk.sitkFloat32


def test_an_unmutated_seed_reads(valid_files, tmp_path):
    """The mutation test starts from files the reader accepts, so its refusals come from the mutations."""
    for suffix, data in valid_files.items():
        (tmp_path / f"ct{suffix}").write_bytes(data)
        assert read_image(tmp_path / f"ct{suffix}").GetSize() == (16, 16, 16)


# ---------------------------------------------------------------- manifests

CSV_TEXT = st.text(alphabet=string.printable + "éü\u00a0\ufeff\x00", max_size=400)
MANIFEST_HEADER = "path,label,patient_id,study_id,mask\n"


@FUZZ
@given(body=CSV_TEXT, with_header=st.booleans())
def test_manifest_reader_on_random_csv(body, with_header):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sitk.WriteImage(chest_image(), str(root / "a.nii.gz"))
        path = root / "manifest.csv"
        path.write_text((MANIFEST_HEADER if with_header else "") + body, encoding="utf-8")
        accepts_or_refuses(read_manifest, path)
        accepts_or_refuses(open_dataset, root)


@FUZZ
@given(body=CSV_TEXT, meta=st.binary(max_size=200))
def test_phantom_reader_on_random_csv(body, meta):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "meta.json").write_bytes(meta)
        columns = "study_id,patient_id,study_index,diagnosis,ct,lungs,lesions,cxr,cxr_lungs,meta\n"
        (root / "manifest.csv").write_text(columns + body, encoding="utf-8")
        accepts_or_refuses(open_dataset, root)


# ---------------------------------------------------------------- case index

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def small_index(tmp_path_factory) -> Path:
    """A valid index of two studies with 4-long vectors: the seed the damage tests start from."""
    folder = tmp_path_factory.mktemp("index") / "index"
    index = CaseIndex.create(folder, "ab" * 32, dim=4)
    rng = np.random.default_rng(0)
    for number in range(2):
        study = {"study_id": f"s{number}", "patient_id": f"p{number}", "diagnosis": "covid", "source_path": "ct.nii.gz"}
        index.add_study(study, rng.normal(size=(3, 4)).astype(np.float32), [4, 5, 6])
    return folder


def header_fields(small_index: Path) -> dict:
    return json.loads((small_index / "index.json").read_text())


@FUZZ
@given(value=JSON_VALUES)
def test_index_open_on_random_json(small_index, value):
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(shutil.copytree(small_index, Path(folder) / "index"))
        (copy / "index.json").write_text(json.dumps(value))
        accepts_or_refuses(CaseIndex.open, copy)


@FUZZ
@given(field=st.sampled_from(["model_sha256", "dim", "generation", "studies", "slices", "bytes"]), value=JSON_VALUES)
def test_index_open_on_a_wrong_header_field(small_index, field, value):
    """A header that is the right format with one field replaced: gets past the format check."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(shutil.copytree(small_index, Path(folder) / "index"))
        header = header_fields(small_index)
        header[field] = value
        (copy / "index.json").write_text(json.dumps(header))
        accepts_or_refuses(CaseIndex.open, copy)


@FUZZ
@given(which=st.integers(0, 20), offset=st.integers(0, 10_000), data=st.binary(min_size=1, max_size=16),
       truncate=st.booleans())
def test_index_open_on_damaged_files(small_index, which, offset, data, truncate):
    """One data file of the index overwritten in place, or cut short."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(shutil.copytree(small_index, Path(folder) / "index"))
        files = sorted(path for path in copy.iterdir() if path.name != "index.json")
        target = files[which % len(files)]
        content = bytearray(target.read_bytes())
        at = offset % max(len(content), 1)
        content = content[:at] if truncate else content[:at] + data + content[at + len(data):]
        target.write_bytes(bytes(content))
        index = accepts_or_refuses(CaseIndex.open, copy)
        if index is not None:
            assert set(index.study_ids()) <= {"s0", "s1"}


def test_the_seed_index_opens(small_index):
    assert CaseIndex.open(small_index).study_ids() == ["s0", "s1"]
