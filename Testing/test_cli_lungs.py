"""``covidweak lungs``: success path and one-line errors (exit 2, no traceback) for bad inputs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.cli import main


def _first_ct(phantom_dir: Path) -> Path:
    with open(phantom_dir / "manifest.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    return phantom_dir / row["ct"]


def _write(array: np.ndarray, path: Path) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path


def _assert_one_line_error(capsys, code: int, *fragments: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("covidweak lungs: error:")
    for fragment in fragments:
        assert fragment in err


def test_writes_labels_and_prints_volumes(phantom_dir, tmp_path, capsys):
    ct_path = _first_ct(phantom_dir)
    out = tmp_path / "sub" / "lungs.nii.gz"
    assert main(["lungs", str(ct_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    labels = sitk.ReadImage(str(out))
    ct = sitk.ReadImage(str(ct_path))
    assert labels.GetSize() == ct.GetSize() and labels.GetPixelID() == sitk.sitkUInt8
    array = sitk.GetArrayViewFromImage(labels)
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    for name, label in (("right", 1), ("left", 2)):
        expected = np.count_nonzero(array == label) * voxel_ml
        assert expected > 50.0
        assert f"{name} lung: {expected:.1f} mL" in printed


def test_refuses_existing_output_unless_overwrite(phantom_dir, tmp_path, capsys):
    out = tmp_path / "lungs.nii.gz"
    out.write_bytes(b"keep me")
    code = main(["lungs", str(_first_ct(phantom_dir)), "--out", str(out)])
    _assert_one_line_error(capsys, code, "already exists", "--overwrite")
    assert out.read_bytes() == b"keep me"
    assert main(["lungs", str(_first_ct(phantom_dir)), "--out", str(out), "--overwrite"]) == 0
    assert sitk.ReadImage(str(out)).GetPixelID() == sitk.sitkUInt8


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    rng = np.random.default_rng(0)
    nan = np.full((20, 32, 32), -1000.0, dtype=np.float32)
    nan[10, 10:20, 10:20] = 40.0
    nan[5, 5, 5] = np.nan
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    body_only = np.full((20, 32, 32), -1000.0, dtype=np.float32)
    body_only[:, 6:26, 6:26] = 40.0
    return {
        "missing": (tmp_path / "nope.nii.gz", "no such file"),
        "corrupt": (corrupt, "corrupt.nii.gz"),
        "2-D": (_write(np.zeros((64, 64), np.float32), tmp_path / "slice.nii.gz"), "3-D"),
        "NaN": (_write(nan, tmp_path / "nan.mha"), "NaN"),  # NIfTI round trips drop NaN
        "all air": (_write(np.full((20, 32, 32), -1000.0, np.float32), tmp_path / "air.nii.gz"), "only air"),
        "MR-like": (_write(rng.uniform(0, 1000, (20, 32, 32)).astype(np.float32), tmp_path / "mr.nii.gz"), "MR"),
        "no lung": (_write(body_only, tmp_path / "nolung.nii.gz"), "no air-filled lung found"),
    }


@pytest.mark.parametrize("case", ["missing", "corrupt", "2-D", "NaN", "all air", "MR-like", "no lung"])
def test_bad_input_is_one_line_exit_2(case, tmp_path, capsys):
    path, fragment = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out.nii.gz"
    code = main(["lungs", str(path), "--out", str(out)])
    _assert_one_line_error(capsys, code, fragment)
    assert not out.exists()


def test_unwritable_format_refused_before_work(tmp_path, capsys):
    code = main(["lungs", str(tmp_path / "whatever.nii.gz"), "--out", str(tmp_path / "lungs.png")])
    _assert_one_line_error(capsys, code, "lungs.png")


def test_console_script_error_has_no_traceback(tmp_path):
    script = Path(sys.executable).with_name("covidweak")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "covidweak"]
    result = subprocess.run(
        [*command, "lungs", str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "o.nii.gz")],
        capture_output=True, text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr


def test_classical_flag_gives_the_mask_without_the_network_step(phantom_dir, tmp_path):
    from covidweak.lungs import segment_lungs

    ct_path = _first_ct(phantom_dir)
    out = tmp_path / "classical.nii.gz"
    assert main(["lungs", str(ct_path), "--out", str(out), "--classical"]) == 0
    expected = segment_lungs(sitk.ReadImage(str(ct_path)), learned=False)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), sitk.GetArrayFromImage(expected))
