"""COVIDWeakSeg Logic: inference in a child process, its progress, errors and Cancel."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from covidweakseg_fixtures import cam_weights, ct_volume, ijk_to_ras, logic, study  # noqa: F401  (fixtures by name)

from covidweak.slicer.child_process import ChildProcess
from covidweak.errors import CancelledError, CovidWeakError  # noqa: E402
from covidweak.progress import Progress  # noqa: E402
from covidweak.slicer.runner import Where, child_command  # noqa: E402


@pytest.mark.slow
def test_child_process_gives_the_same_probability_as_in_process(logic, ct_volume, cam_weights):
    import slicer

    synced = slicer.util.arrayFromVolume(
        logic.process(ct_volume, method="cam", weights=cam_weights, device="cpu", t_fg=0.52, t_bg=0.5).probability).copy()
    reports = []
    child = logic.process(ct_volume, where=Where.CHILD_PROCESS,
                          progress=Progress(lambda d, t, m: reports.append((d, t, m))))
    np.testing.assert_allclose(slicer.util.arrayFromVolume(child.probability), synced, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(ijk_to_ras(child.probability), ijk_to_ras(ct_volume))
    assert {"lesion probability"} <= {m for _, _, m in reports}
    done, total, _ = reports[-1]
    assert done == total > 0
    assert list(Path(logic.work_dir).iterdir()) == [], "the child's temporary folder is removed"


SLOW_FAKE = textwrap.dedent("""
    import json, subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    open(sys.argv[1], "w").write(f"{grandchild.pid}")
    for i in range(2400):
        print(json.dumps({"done": i, "total": 2400, "message": "pretending"}), flush=True)
        time.sleep(0.05)
""")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_cancel_kills_the_child_and_its_children(logic, ct_volume, cam_weights, mrml_scene, tmp_path, monkeypatch):
    from covidweak.slicer import runner

    pid_file = tmp_path / "grandchild.pid"
    monkeypatch.setattr(runner, "child_command", lambda argv: [sys.executable, "-c", SLOW_FAKE, str(pid_file)])
    nodes_before = mrml_scene.GetNumberOfNodes()

    def cancel_after_a_few(done, total, message):
        if done >= 3:
            progress.cancel()

    progress = Progress(cancel_after_a_few)
    start = time.perf_counter()
    with pytest.raises(CancelledError):
        logic.process(ct_volume, method="cam", weights=cam_weights, device="cpu", t_fg=0.52, t_bg=0.5,
                      where=Where.CHILD_PROCESS, progress=progress)
    assert time.perf_counter() - start < 30
    grandchild = int(pid_file.read_text())
    deadline = time.time() + 5
    while alive(grandchild) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild), "the whole process group is killed"
    assert mrml_scene.GetNumberOfNodes() == nodes_before + 1  # the parameter node only
    assert logic.parameters.output_probability is None
    assert not any(p.name.startswith("covidweak-segment-") for p in tmp_path.iterdir())


def test_child_errors_arrive_as_one_line_messages():
    fail = [sys.executable, "-c", "import sys; print('covidweak segment: error: the CT is empty: give another', "
                                  "file=sys.stderr); sys.exit(2)"]
    with pytest.raises(CovidWeakError, match="^the CT is empty: give another$"):
        ChildProcess(fail).wait()
    crash = [sys.executable, "-c", "raise RuntimeError('boom')"]
    with pytest.raises(CovidWeakError, match="exit status 1.*RuntimeError: boom"):
        ChildProcess(crash).wait()


def test_child_command_runs_the_segment_cli_with_json_progress(tmp_path):
    from COVIDWeakSegLib.logic import segment_command

    command = child_command(segment_command(tmp_path / "ct.nrrd", tmp_path / "out", "cam", "cam-light", 0.1, 0.01, "cpu"))
    assert command[1:4] == ["-m", "covidweak.slicer.progress_stream", "segment"] and "--lesion-boxes" not in command
    assert command[command.index("--t-fg") + 1] == "0.1" and command[command.index("--device") + 1] == "cpu"
    assert os.path.basename(command[0]).startswith(("python", "PythonSlicer"))
