"""The package's shared plumbing: device selection, progress/cancel, CLI entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import covidweak
from covidweak.device import MODULE_DEVICES, check_module_device, resolve_device
from covidweak.errors import CancelledError, DeviceError, InputError
from covidweak.progress import Progress


def test_auto_device_is_cpu_without_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("CPU").type == "cpu"


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "tpu", "cuda:-1"])
def test_malformed_device_is_rejected_with_the_choices(spec):
    with pytest.raises(DeviceError, match="auto.*cpu.*cuda"):
        resolve_device(spec)


def test_module_panels_offer_three_devices_and_name_them_on_a_bad_one():
    for device in MODULE_DEVICES:
        check_module_device(device)
    with pytest.raises(InputError, match="device 'cuda:1' is not one of auto, cpu, cuda"):
        check_module_device("cuda:1")  # the CLI takes it; the panels' combo boxes do not offer it


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_says_what_to_use_instead():
    with pytest.raises(DeviceError, match="--device cpu"):
        resolve_device("cuda:0")


@pytest.mark.gpu
def test_cuda_index_beyond_device_count_is_rejected():
    assert resolve_device("cuda").type == "cuda"
    with pytest.raises(DeviceError, match="GPU"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_progress_reports_and_cancels():
    seen = []
    progress = Progress(lambda done, total, message: seen.append((done, total, message)))
    assert list(progress.iterate("abc", total=3, message="letters")) == ["a", "b", "c"]
    assert seen[0] == (0, 3, "letters") and seen[-1] == (3, 3, "letters")
    progress.cancel()
    with pytest.raises(CancelledError):
        progress.update(1, 3)


def test_cli_version_and_help():
    run = subprocess.run([sys.executable, "-m", "covidweak", "--version"], capture_output=True, text=True)
    assert run.returncode == 0
    assert run.stdout.strip() == f"covidweak {covidweak.__version__}"
    run = subprocess.run([sys.executable, "-m", "covidweak", "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    for command in ("phantom", "lungs", "demo"):
        assert command in run.stdout


def test_package_import_is_light():
    # Slicer imports covidweak before its dependencies are installed.
    code = "import sys, covidweak; heavy = {'torch', 'numpy', 'SimpleITK'} & set(sys.modules); print(sorted(heavy))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
