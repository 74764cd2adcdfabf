"""COVIDSimilarCase end to end: the real ``covidweak index build`` and ``covidweak similar`` commands.

A random-initialised light DuCN embeds a three-study phantom library; the
ranking means nothing, but a study queried against an index that holds it
must come back first at distance 0 (the same slices give the same
embeddings), and the opened case must be that study's CT. The library is a
CSV manifest of the phantom's CTs without their exact lung masks, so the index
and the query both segment the lungs with the same code.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "COVIDSimilarCase") not in sys.path:
    sys.path.insert(0, str(ROOT / "COVIDSimilarCase"))

from COVIDSimilarCaseLib import COVIDSimilarCaseLogic  # noqa: E402
from covidweak.slicer.outputs import table_node_rows  # noqa: E402
from covidweak.progress import Progress  # noqa: E402
from covidweak.slicer.runner import Where  # noqa: E402

pytestmark = pytest.mark.slow
CASES = "cases.csv"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """(library folder, its manifest rows, random DuCN weight file)."""
    import torch
    from covidweak.models import build_model, save_weights
    from covidweak.phantom import PhantomConfig, generate_dataset

    folder = tmp_path_factory.mktemp("library")
    generate_dataset(folder / "data", patients=3, studies_per_patient=1, seed=11,
                     config=PhantomConfig(size=128, slices=32))
    torch.manual_seed(0)
    save_weights(folder / "ducn.pt", build_model("ducn", {"widen_factor": 0.25}), "ducn", {"widen_factor": 0.25},
                 {"input_size": 64})
    with (folder / "data" / "manifest.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    with (folder / "data" / CASES).open("w", newline="") as stream:
        cases = csv.writer(stream)
        cases.writerow(["path", "label", "patient_id", "study_id"])
        cases.writerows([row["ct"], row["diagnosis"], row["patient_id"], row["study_id"]] for row in rows)
    return folder, rows, str(folder / "ducn.pt")


def test_build_search_and_open_with_the_real_commands(library, mrml_scene, tmp_path):
    import slicer
    from covidweak.io import read_ct
    from covidweak.slicer.mrml import volume_node_from_image

    folder, rows, weights = library
    logic = COVIDSimilarCaseLogic(mrml_scene, work_dir=str(tmp_path))
    logic.parameters.ducn_weights = weights
    status = logic.build_index(str(folder / "data" / CASES), str(tmp_path / "index"))
    assert status.startswith(f"case index {tmp_path / 'index'}")
    source = folder / "data" / rows[1]["ct"]
    query = volume_node_from_image(read_ct(source), scene=mrml_scene, name="query CT")
    table = logic.search(query, k=3)
    columns, results = table_node_rows(table)
    best = dict(zip(columns, results[0]))
    assert [r[columns.index("rank")] for r in results] == [1, 2, 3]
    assert best["study_id"] == rows[1]["study_id"] and best["distance"] == pytest.approx(0.0, abs=1e-4)
    opened = logic.open_case(0)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(opened.volume), slicer.util.arrayFromVolume(query))
    assert opened.volume.GetID() != query.GetID() and opened.match_slice == opened.query_slice


def test_single_slice_query_in_a_child_process(library, mrml_scene, tmp_path):
    from covidweak.io import read_ct
    from covidweak.slicer.mrml import volume_node_from_image

    folder, rows, weights = library
    logic = COVIDSimilarCaseLogic(mrml_scene, work_dir=str(tmp_path))
    logic.parameters.ducn_weights = weights
    logic.build_index(str(folder / "data" / CASES), str(tmp_path / "index"))
    work = tmp_path / "work"
    work.mkdir()
    logic.work_dir = str(work)
    query = volume_node_from_image(read_ct(folder / "data" / rows[0]["ct"]), scene=mrml_scene, name="query CT")
    messages = []
    table = logic.search(query, k=2, slice_index=16, where=Where.CHILD_PROCESS,
                         progress=Progress(lambda d, t, m: messages.append(m)))
    columns, results = table_node_rows(table)
    assert {r[columns.index("query_slice")] for r in results} == {16}
    assert dict(zip(columns, results[0]))["study_id"] == rows[0]["study_id"]
    assert messages and list(work.iterdir()) == []
