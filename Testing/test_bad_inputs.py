"""A catalogue of bad inputs and the one-line error each must give (issue #7).

Two tables drive two parametrized tests:

* ``CLI_CASES``: a bad file (or folder) is written into ``tmp_path`` and a
  ``covidweak`` command run on it in process; the command must exit with 2 and
  print exactly one stderr line, without a traceback, holding the expected
  fragment.
* ``LOGIC_CASES``: the same kinds of bad image, as a volume node in a real MRML
  scene, given to each module Logic's entry point; it must raise
  :class:`~covidweak.errors.CovidWeakError` holding the fragment.

Several readers already have focused tests (test_io_files, test_dicom,
test_validate, test_index_storage, test_model_weights); this file checks the
user-facing end of them, command by command and module by module. Volumes are
tiny and every case stops at validation, so no network runs a forward pass.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak import cli
from covidweak.errors import CovidWeakError

ROOT = Path(__file__).resolve().parents[1]
for module in ("COVIDWeakSeg", "COVIDSeverity", "COVIDSimilarCase"):
    if str(ROOT / module) not in sys.path:
        sys.path.insert(0, str(ROOT / module))

from COVIDSeverityLib import COVIDSeverityLogic  # noqa: E402
from COVIDSimilarCaseLib import COVIDSimilarCaseLogic  # noqa: E402
from COVIDWeakSegLib import COVIDWeakSegLogic  # noqa: E402
from test_dicom import hu_volume, write_series  # noqa: E402

MODELS = ROOT / "Resources" / "Models"
SHAPE = (20, 24, 24)  # (z, y, x): above the 16-voxel minimum of check_ct on every axis


def chest_hu(shape=SHAPE) -> np.ndarray:
    """A crude chest in HU, shape (z, y, x): air around a soft-tissue box holding two lung blocks."""
    hu = np.full(shape, -1000.0, dtype=np.float32)
    z, y, x = shape
    hu[:, y // 6: -y // 6, x // 8: -x // 8] = 40.0
    hu[:, y // 4: -y // 4, x // 5: x // 2 - 1] = -850.0
    hu[:, y // 4: -y // 4, x // 2 + 1: -x // 5] = -850.0
    return hu


def image_of(array: np.ndarray, spacing=None) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing or (0.7,) * array.ndim)
    return image


def write(path: Path, array: np.ndarray, spacing=None) -> Path:
    sitk.WriteImage(image_of(array, spacing), str(path))
    return path


def truncated_nifti(tmp: Path) -> Path:
    path = write(tmp / "ct.nii", chest_hu().astype(np.int16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_nifti(tmp: Path) -> Path:
    path = tmp / "ct.nii.gz"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return path


def with_value(value: float) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        hu = chest_hu()
        hu[10, 12, 12] = value
        return write(tmp / "ct.nii.gz", hu)

    return make


def mixed_dicom_series(tmp: Path) -> Path:
    tilted = {5: {"ImageOrientationPatient": ["1", "0", "0", "0", "0.8", "0.6"]}}
    write_series(tmp / "dicom", hu_volume(), angle=0.0, overrides=tilted)
    return tmp / "dicom"


def dicom_missing_slice(tmp: Path) -> Path:
    write_series(tmp / "dicom", hu_volume(), skip=(7,))
    return tmp / "dicom"


def array_file(array: np.ndarray, spacing=None) -> Callable[[Path], Path]:
    return lambda tmp: write(tmp / "ct.nii.gz", array, spacing)


ALL_AIR = np.full(SHAPE, -1000.0, dtype=np.float32)
ALL_BONE = np.full(SHAPE, 1200.0, dtype=np.float32)
MR_LIKE = np.random.default_rng(1).uniform(0.0, 2500.0, SHAPE).astype(np.float32)
ONE_SLICE = chest_hu()[10]
THIN_STACK = chest_hu()[:3]
ANISOTROPIC = (0.7, 0.7, 60.0)


@dataclass(frozen=True)
class CliCase:
    """``make(tmp, good_ct)`` writes the bad input and returns the argv after ``covidweak``."""

    name: str
    make: Callable[[Path, Path], list]
    fragment: str


def segment(make_ct: Callable[[Path], Path]) -> Callable[[Path, Path], list]:
    return lambda tmp, good: ["segment", make_ct(tmp), "--out", tmp / "out"]


def segment_weights(make_weights: Callable[[Path], Path], method: str = "cam") -> Callable[[Path, Path], list]:
    return lambda tmp, good: ["segment", good, "--out", tmp / "out", "--method", method, "--weights", make_weights(tmp)]


def similar_index(make_index: Callable[[Path], Path]) -> Callable[[Path, Path], list]:
    return lambda tmp, good: ["similar", good, "--index", make_index(tmp), "--out", tmp / "similar.json"]


def empty_folder(tmp: Path) -> Path:
    (tmp / "index").mkdir()
    return tmp / "index"


def foreign_folder(tmp: Path) -> Path:
    (tmp / "index").mkdir()
    (tmp / "index" / "notes.txt").write_text("holiday photos\n")
    return tmp / "index"


def foreign_header(tmp: Path) -> Path:
    (tmp / "index").mkdir()
    (tmp / "index" / "index.json").write_text('{"name": "some other tool", "version": 3}')
    return tmp / "index"


def corrupt_weights(tmp: Path) -> Path:
    path = tmp / "cam.pt"
    path.write_bytes(b"PK\x03\x04 this is not a torch archive" * 10)
    return path


CLI_CASES = [
    CliCase("missing-nifti", segment(lambda tmp: tmp / "absent.nii.gz"), "no such file"),
    CliCase("truncated-nifti", segment(truncated_nifti), "truncated"),
    CliCase("corrupt-nifti", segment(corrupt_nifti), "re-export the file"),
    CliCase("dicom-mixed-series", segment(mixed_dicom_series), "mixes slice orientations"),
    CliCase("dicom-missing-slices", segment(dicom_missing_slice), "missing slices"),
    CliCase("2d-for-3d", segment(array_file(ONE_SLICE)), "expected a 3-D CT volume"),
    CliCase("3d-for-2d", lambda tmp, good: ["severity", array_file(THIN_STACK)(tmp), "--out", tmp / "out"],
            "too small to be a chest CT"),
    CliCase("nan-voxels", segment(with_value(np.nan)), "NaN/Inf"),
    CliCase("inf-voxels", segment(with_value(np.inf)), "NaN/Inf"),
    CliCase("all-air", segment(array_file(ALL_AIR)), "only air"),
    CliCase("all-bone", segment(array_file(ALL_BONE)), "no air below"),
    CliCase("mr-like", segment(array_file(MR_LIKE)), "looks like MR"),
    CliCase("anisotropic-spacing", segment(array_file(chest_hu(), ANISOTROPIC)), "spacing"),
    CliCase("missing-weights", segment_weights(lambda tmp: tmp / "absent.pt"), "not found"),
    CliCase("corrupt-weights", segment_weights(corrupt_weights), "corrupt"),
    CliCase("wrong-task-weights", segment_weights(lambda tmp: MODELS / "ducn-light.pt"), "not 'cam'"),
    CliCase("empty-index", similar_index(empty_folder), "is empty"),
    CliCase("foreign-index", similar_index(foreign_folder), "not a covidweak case index"),
    CliCase("foreign-index-json", similar_index(foreign_header), "not a covidweak case index header"),
]


@pytest.fixture(scope="module")
def good_ct(tmp_path_factory) -> Path:
    """A valid little phantom CT (64x64x32) for the cases whose fault lies elsewhere."""
    from covidweak.phantom import PhantomConfig, generate_study

    study = generate_study(3, 0, "covid", config=PhantomConfig(size=64, slices=32))
    path = tmp_path_factory.mktemp("good") / "ct.nii.gz"
    sitk.WriteImage(study.ct, str(path))
    return path


def run_cli(argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    status = cli.main([str(part) for part in argv])
    return status, capsys.readouterr().err


def assert_one_line_error(status: int, err: str, fragment: str) -> None:
    assert status == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("covidweak ") and ": error: " in lines[0]
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.name for case in CLI_CASES])
def test_cli_gives_one_line_error(case, tmp_path, good_ct, capsys):
    status, err = run_cli(case.make(tmp_path, good_ct), capsys)
    assert_one_line_error(status, err, case.fragment)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- output folders


def mount_tmpfs(folder: Path, options: str) -> None:
    """Mount a small tmpfs at ``folder`` or skip: needs root in a container that allows mounts."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'})")


def tmpfs_fixture(name: str, options: str):
    """A fixture yielding a tmpfs of ``options`` mounted at ``tmp_path / name``, unmounted after."""

    @pytest.fixture
    def fixture(tmp_path):
        folder = tmp_path / name
        mount_tmpfs(folder, options)
        yield folder
        subprocess.run(["umount", str(folder)], check=True)

    return fixture


small_disk = tmpfs_fixture("disk", "size=64k")
read_only_disk = tmpfs_fixture("ro", "ro,size=64k")


def test_read_only_output_folder(read_only_disk, good_ct, capsys):
    status, err = run_cli(["lungs", good_ct, "--out", read_only_disk / "lungs.nii.gz"], capsys)
    assert_one_line_error(status, err, "writable")


def test_full_disk_leaves_no_partial_file(small_disk, good_ct, capsys):
    # 64x64x32 uint8 labels stored uncompressed are 131 kB: twice the disk.
    status, err = run_cli(["lungs", good_ct, "--out", small_disk / "lungs.nii"], capsys)
    assert_one_line_error(status, err, "has space")
    assert list(small_disk.iterdir()) == []


# ---------------------------------------------------------------- module Logic


def volume_node(scene, array: np.ndarray, spacing=None):
    from covidweak.slicer.mrml import volume_node_from_image

    if array.ndim == 2:
        array = array[None]  # Slicer holds a 2-D image as a volume one slice thick
        spacing = spacing and (*spacing, 1.0)
    return volume_node_from_image(image_of(array, spacing), scene=scene, name="bad input")


def nonempty_folder(tmp: Path) -> Path:
    """Passes the Logic's own folder check, so the volume is what gets checked."""
    return foreign_folder(tmp)


ENTRIES = {
    "weakseg.validate_input": lambda scene, tmp, node: COVIDWeakSegLogic(scene, str(tmp)).validate_input(node),
    "severity.classify_input": lambda scene, tmp, node: COVIDSeverityLogic(scene, str(tmp)).classify_input(node),
    "similar.validate_inputs": lambda scene, tmp, node: COVIDSimilarCaseLogic(scene, str(tmp)).validate_inputs(
        node, nonempty_folder(tmp)),
}
"""The check every Logic runs first, on the selected volume, before any work starts."""

IMAGE_CASES = [
    # name, array, spacing, fragment, entries it applies to
    ("nan-voxels", "nan", None, "NaN or infinite", ENTRIES),
    ("inf-voxels", "inf", None, "NaN or infinite", ENTRIES),
    ("all-air", ALL_AIR, None, "only air", ENTRIES),
    ("all-bone", ALL_BONE, None, "no air below", ENTRIES),
    ("mr-like", MR_LIKE, None, "looks like MR", ENTRIES),
    ("anisotropic-spacing", chest_hu(), ANISOTROPIC, "spacing", ENTRIES),
    # A one-slice volume is a radiograph to COVIDSeverity, so only the CT modules refuse it.
    ("2d-for-3d", ONE_SLICE, None, "too small to be a chest CT", ["weakseg.validate_input", "similar.validate_inputs"]),
    ("3d-for-2d", THIN_STACK, None, "too small to be a chest CT", ["severity.classify_input"]),
]

LOGIC_CASES = [(name, entry, array, spacing, fragment)
               for name, array, spacing, fragment, entries in IMAGE_CASES for entry in entries]


def bad_array(array):
    if isinstance(array, str):
        hu = chest_hu()
        hu[10, 12, 12] = np.nan if array == "nan" else np.inf
        return hu
    return array


@pytest.mark.parametrize("name, entry, array, spacing, fragment", LOGIC_CASES,
                         ids=[f"{case[1]}-{case[0]}" for case in LOGIC_CASES])
def test_logic_refuses_bad_volume(name, entry, array, spacing, fragment, mrml_scene, tmp_path):
    node = volume_node(mrml_scene, bad_array(array), spacing)
    with pytest.raises(CovidWeakError, match=fragment):
        ENTRIES[entry](mrml_scene, tmp_path, node)


@pytest.fixture
def good_volume(mrml_scene):
    return volume_node(mrml_scene, chest_hu())


@pytest.mark.parametrize("make_weights, fragment", [
    (lambda tmp: tmp / "absent.pt", "not found"),
    (corrupt_weights, "corrupt"),
    (lambda tmp: MODELS / "ducn-light.pt", "not 'cam'"),
], ids=["missing", "corrupt", "wrong-task"])
def test_weakseg_process_refuses_bad_weights(make_weights, fragment, mrml_scene, good_volume, tmp_path):
    logic = COVIDWeakSegLogic(mrml_scene, work_dir=str(tmp_path))
    with pytest.raises(CovidWeakError, match=fragment):
        logic.process(good_volume, method="cam", weights=str(make_weights(tmp_path)), device="cpu")


@pytest.mark.parametrize("make_index, fragment", [
    (empty_folder, "is empty"),
    (foreign_folder, "not a covidweak case index"),
    (foreign_header, "not a covidweak case index header"),
], ids=["empty", "foreign", "foreign-json"])
def test_similar_search_refuses_bad_index(make_index, fragment, mrml_scene, good_volume, tmp_path):
    logic = COVIDSimilarCaseLogic(mrml_scene, work_dir=str(tmp_path))
    with pytest.raises(CovidWeakError, match=fragment):
        logic.search(good_volume, index_dir=str(make_index(tmp_path)), k=1)


def test_severity_process_refuses_bad_volume(mrml_scene, tmp_path):
    logic = COVIDSeverityLogic(mrml_scene, work_dir=str(tmp_path))
    with pytest.raises(CovidWeakError, match="only air"):
        logic.process(volume_node(mrml_scene, ALL_AIR), device="cpu")
