"""COVIDSimilarCase Logic on a real MRML scene: similar-case results, opening a case, lesion clusters.

``covidweak similar`` and ``covidweak clusters`` are written in parallel with
this module, so the output files here are written by the functions below in
the documented contract, from real data: the session phantom's CT files (so
opening a case reads a real study) and the connected lesions of a phantom CT.
"""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "COVIDSimilarCase") not in sys.path:
    sys.path.insert(0, str(ROOT / "COVIDSimilarCase"))

from COVIDSimilarCaseLib import COVIDSimilarCaseLogic  # noqa: E402
from COVIDSimilarCaseLib import display, outputs  # noqa: E402
from covidweak.errors import CovidWeakError, InputError  # noqa: E402
from covidweak.io.ras import LPS_TO_RAS
from covidweak.slicer.outputs import table_node_rows  # noqa: E402
from covidweak.slicer.runner import Where  # noqa: E402


# ---------------------------------------------------------------- contract files from real data


def manifest_rows(phantom_dir: Path) -> list[dict]:
    with (phantom_dir / "manifest.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))


def write_similar_json(phantom_dir: Path, path: Path, query_slice=None) -> dict:
    """similar.json ranking the first four phantom studies (distances rising), match slices 10, 12, 14, 16."""
    results = [{"rank": rank, "study_id": row["study_id"], "patient_id": row["patient_id"],
                "diagnosis": row["diagnosis"], "distance": 0.25 * rank,
                "source_path": str((phantom_dir / row["ct"]).resolve()),
                "query_slice": query_slice, "match_slice": 8 + 2 * rank}
               for rank, row in enumerate(manifest_rows(phantom_dir)[:4], start=1)]
    report = {"query": {"path": "query.nrrd", "slices": 32, "slice": query_slice},
              "index": {"path": "index", "model_sha256": "0" * 64, "studies": 8}, "k": 4, "results": results}
    path.write_text(json.dumps(report))
    return report


def lesion_rows(lesions: sitk.Image, study_id: str, first_tsne: float) -> tuple[sitk.Image, list[dict]]:
    """Connected lesions of a phantom lesion map as lesion_labels and lesions.csv rows (RAS centroids)."""
    components = sitk.RelabelComponent(sitk.ConnectedComponent(lesions > 0))
    labels = sitk.GetArrayFromImage(components)
    rows = []
    for lesion_id in range(1, int(labels.max()) + 1):
        k, j, i = np.nonzero(labels == lesion_id)
        lps = lesions.TransformContinuousIndexToPhysicalPoint((i.mean(), j.mean(), k.mean()))
        r, a, s = LPS_TO_RAS @ np.array(lps)
        rows.append({"study_id": study_id, "lesion_id": lesion_id, "centroid_r": r, "centroid_a": a,
                     "centroid_s": s, "cluster": lesion_id % 3, "score": 1.0 / lesion_id,
                     "tsne_x": first_tsne + lesion_id, "tsne_y": -float(lesion_id), "type": ""})
    return sitk.Cast(components, sitk.sitkUInt16), rows


def write_lesions_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=outputs.LESION_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def logic(mrml_scene, tmp_path):
    return COVIDSimilarCaseLogic(mrml_scene, work_dir=str(tmp_path))


@pytest.fixture
def query(phantom_dir, mrml_scene):
    """The last phantom study as the query CT, and its manifest row."""
    from covidweak.io import read_ct
    from covidweak.slicer.mrml import volume_node_from_image

    row = manifest_rows(phantom_dir)[-1]
    return volume_node_from_image(read_ct(phantom_dir / row["ct"]), scene=mrml_scene, name="query CT"), row


@pytest.fixture
def views(mrml_scene):
    """Red and Yellow slice views with their composite nodes, as the side-by-side layout has them."""
    nodes = {}
    for name in (display.QUERY_VIEW, display.MATCH_VIEW):
        slice_node = mrml_scene.AddNewNodeByClass("vtkMRMLSliceNode")
        slice_node.SetLayoutName(name)
        composite = mrml_scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
        composite.SetLayoutName(name)
        nodes[name] = (slice_node, composite)
    return nodes


@pytest.fixture
def cluster_folders(phantom_dir, query, tmp_path):
    """A model folder (library: the lesions of up to three other studies) and an output folder for the query CT."""
    from covidweak.io import read_image

    model, out = tmp_path / "model", tmp_path / "clusters"
    model.mkdir()
    out.mkdir()
    library = []
    others = [row for row in manifest_rows(phantom_dir)[:-1] if int(row["n_lesions"]) > 0]
    for row in others[:3]:
        library += lesion_rows(read_image(phantom_dir / row["lesions"]), row["study_id"], 100.0)[1]
    write_lesions_csv(library, model / outputs.LESIONS_CSV)
    labels, rows = lesion_rows(read_image(phantom_dir / query[1]["lesions"]), "query", 0.0)
    write_lesions_csv(rows, out / outputs.LESIONS_CSV)
    sitk.WriteImage(labels, str(out / outputs.LESION_LABELS))
    assert rows and library, "the phantom studies used here have lesions"
    return model, out, sitk.GetArrayFromImage(labels), rows, library


def column(table, name):
    columns, rows = table_node_rows(table)
    return [row[columns.index(name)] for row in rows]


# ---------------------------------------------------------------- similar cases


def test_results_table_lists_the_ranked_cases(logic, query, phantom_dir, tmp_path):
    report = write_similar_json(phantom_dir, tmp_path / "similar.json")
    table = logic.load_similar(query[0], tmp_path / "similar.json")
    assert logic.parameters.output_results_table is table and table.GetName() == "query CT similar cases"
    assert column(table, "rank") == [1, 2, 3, 4]
    assert column(table, "distance") == [0.25, 0.5, 0.75, 1.0]
    assert column(table, "study_id") == [r["study_id"] for r in report["results"]]
    assert column(table, "diagnosis") == [r["diagnosis"] for r in report["results"]]
    assert column(table, "match_slice") == [10, 12, 14, 16]


def test_selecting_a_row_opens_the_study_beside_the_untouched_query(logic, query, phantom_dir, tmp_path, views,
                                                                    mrml_scene):
    import slicer
    import vtk
    from covidweak.io import read_ct

    volume, _ = query
    before = slicer.util.arrayFromVolume(volume).copy()
    report = write_similar_json(phantom_dir, tmp_path / "similar.json", query_slice=20)
    logic.load_similar(volume, tmp_path / "similar.json")
    opened = logic.open_case(1)
    assert opened.volume.GetID() != volume.GetID() and opened.volume.GetName().startswith("similar #2 ")
    source = read_ct(report["results"][1]["source_path"])
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(opened.volume), sitk.GetArrayFromImage(source))
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), before)
    assert mrml_scene.IsNodePresent(volume)
    assert (opened.match_slice, opened.query_slice) == (12, 20)
    red, yellow = views[display.QUERY_VIEW], views[display.MATCH_VIEW]
    assert red[1].GetBackgroundVolumeID() == volume.GetID()
    assert yellow[1].GetBackgroundVolumeID() == opened.volume.GetID()
    for (slice_node, _), node, k in ((red, volume, 20), (yellow, opened.volume, 12)):
        ras_to_ijk = vtk.vtkMatrix4x4()
        node.GetRASToIJKMatrix(ras_to_ijk)
        centre = [slice_node.GetSliceToRAS().GetElement(r, 3) for r in range(3)]
        assert ras_to_ijk.MultiplyPoint((*centre, 1.0))[2] == pytest.approx(k)
    assert logic.current_slice(volume) == 20


def test_thumbnail_shows_the_matching_slice_in_the_lung_window(logic, query, phantom_dir, tmp_path):
    from covidweak.io import read_ct
    from PIL import Image

    report = write_similar_json(phantom_dir, tmp_path / "similar.json")
    logic.load_similar(query[0], tmp_path / "similar.json")
    path = logic.match_thumbnail(2)
    assert path.parent == tmp_path and path.suffix == ".png"
    pixels = np.asarray(Image.open(path))
    hu = sitk.GetArrayFromImage(read_ct(report["results"][2]["source_path"]))[14]  # match slice of rank 3
    assert pixels.shape == (*hu.shape, 3)
    assert np.all(pixels[hu <= -1350] == 0) and np.all(pixels[hu >= 150] == 255)
    assert logic.match_thumbnail(2) == path, "a second call replaces the same file"


def test_opening_refuses_missing_rows_and_moved_studies(logic, query, phantom_dir, tmp_path):
    with pytest.raises(InputError, match="press Search first"):
        logic.open_case(0)
    report = write_similar_json(phantom_dir, tmp_path / "similar.json")
    report["results"][0]["source_path"] = str(tmp_path / "moved.nii.gz")
    (tmp_path / "similar.json").write_text(json.dumps(report))
    logic.load_similar(query[0], tmp_path / "similar.json")
    with pytest.raises(InputError, match="no longer at"):
        logic.open_case(0)
    with pytest.raises(InputError, match="no longer at"):
        logic.match_thumbnail(0)
    with pytest.raises(InputError, match="does not exist: the table has 4 rows"):
        logic.open_case(4)
    (tmp_path / "bad.json").write_text(json.dumps({"query": {}, "results": [{"rank": 1}]}))
    with pytest.raises(CovidWeakError, match="has a result without"):
        logic.load_similar(query[0], tmp_path / "bad.json")


def test_search_and_build_check_their_folders_before_running(logic, query, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        logic.search(query[0], index_dir=str(tmp_path / "missing"))
    with pytest.raises(InputError, match="CT folder .* does not exist"):
        logic.build_index(data_dir=str(tmp_path / "no-cts"), index_dir=str(tmp_path / "index"))
    with pytest.raises(InputError, match="does not exist: create it"):
        logic.build_index(data_dir=str(tmp_path), index_dir=str(tmp_path / "a" / "b"))
    with pytest.raises(InputError, match="holds no lesions.csv"):
        logic.find_clusters(query[0], model_dir=str(tmp_path))
    with pytest.raises(InputError, match="no Red slice view"):
        logic.current_slice(query[0])


FAKE_SIMILAR = textwrap.dedent("""
    import json, sys, time
    argv = sys.argv[1:]
    for i in range(3):
        print(json.dumps({"done": i + 1, "total": 3, "message": "embedding slices"}), flush=True)
        time.sleep(0.3)  # the parent polls progress every 0.05 s
    report = json.loads(open(argv[0]).read())
    report["query"]["slice"] = int(argv[argv.index("--slice") + 1]) if "--slice" in argv else None
    open(argv[argv.index("--out") + 1], "w").write(json.dumps(report))
""")


def test_search_runs_the_command_in_a_child_and_loads_its_output(logic, query, phantom_dir, tmp_path, views,
                                                                 monkeypatch):
    """The panel's path: ChildProcess, progress lines, ``--slice`` of the Red view, output loaded, temp removed."""
    from covidweak.progress import Progress
    from covidweak.slicer import runner

    canned = tmp_path / "canned.json"
    write_similar_json(phantom_dir, canned)
    seen = []

    def fake_similar(argv):
        seen.append([str(a) for a in argv])
        return [sys.executable, "-c", FAKE_SIMILAR, str(canned), *seen[-1][1:]]

    monkeypatch.setattr(runner, "child_command", fake_similar)
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.faiss").write_bytes(b"\0")
    work = tmp_path / "work"
    work.mkdir()
    logic.work_dir = str(work)
    views[display.QUERY_VIEW][0].JumpSliceByCentering(*logic_slice_ras(query[0], 7))
    logic.parameters.slice_only = True
    reports = []
    table = logic.search(query[0], index_dir=str(tmp_path / "index"), k=4, where=Where.CHILD_PROCESS,
                         progress=Progress(lambda d, t, m: reports.append((d, t, m))))
    assert seen[0][0] == "similar" and seen[0][seen[0].index("--slice") + 1] == "7"
    assert seen[0][seen[0].index("--k") + 1] == "4"
    assert column(table, "rank") == [1, 2, 3, 4]
    assert (3, 3, "embedding slices") in reports
    assert list(work.iterdir()) == [], "the temporary query and output are removed"


def logic_slice_ras(volume, k: int):
    from covidweak.slicer.outputs import slice_centre_ras

    return slice_centre_ras(volume, k)


# ---------------------------------------------------------------- lesion clusters


def test_lesions_become_segments_coloured_by_cluster(logic, query, cluster_folders):
    from covidweak.slicer.mrml import labels_from_segmentation_node

    model, out, labels, rows, _ = cluster_folders
    created = logic.load_clusters(query[0], out, model)
    segmentation = created.segmentation.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(rows)
    exported = sitk.GetArrayFromImage(labels_from_segmentation_node(created.segmentation))
    for index, row in enumerate(rows):
        segment = segmentation.GetNthSegment(index)
        assert segment.GetName() == f"Lesion {row['lesion_id']} (cluster {row['cluster']})"
        assert segment.GetColor() == pytest.approx(display.cluster_color(row["cluster"]))
        assert np.count_nonzero(exported == index + 1) == np.count_nonzero(labels == row["lesion_id"])
    assert column(created.lesion_table, "cluster") == [r["cluster"] for r in rows]
    assert column(created.lesion_table, "score") == pytest.approx([r["score"] for r in rows])


def test_tsne_plot_has_the_library_and_the_case_highlighted(logic, query, cluster_folders):
    from covidweak.slicer.outputs import plot_series_nodes

    model, out, _, rows, library = cluster_folders
    created = logic.load_clusters(query[0], out, model)
    library_series, case_series = plot_series_nodes(created.tsne_chart)
    assert library_series.GetTableNode() is created.library_table
    assert case_series.GetTableNode() is created.lesion_table
    assert created.library_table.GetNumberOfRows() == len(library)
    assert {(s.GetXColumnName(), s.GetYColumnName()) for s in (library_series, case_series)} == {("tsne_x", "tsne_y")}
    assert case_series.GetColor() == pytest.approx(display.CASE_COLOR)
    assert library_series.GetColor() == pytest.approx(display.LIBRARY_COLOR)


def test_selecting_a_lesion_row_jumps_to_its_centroid(logic, query, cluster_folders, mrml_scene):
    model, out, _, rows, _ = cluster_folders
    logic.load_clusters(query[0], out, model)
    slice_node = mrml_scene.AddNewNodeByClass("vtkMRMLSliceNode")
    ras = logic.jump_to_lesion(0)
    assert ras == pytest.approx((rows[0]["centroid_r"], rows[0]["centroid_a"], rows[0]["centroid_s"]))
    assert slice_node.GetSliceToRAS().GetElement(2, 3) == pytest.approx(ras[2])
    with pytest.raises(InputError, match="does not exist"):
        logic.jump_to_lesion(len(rows))


def test_cluster_outputs_on_another_grid_are_refused(logic, query, cluster_folders, mrml_scene):
    from covidweak.slicer.mrml import volume_node_from_image

    model, out, _, _, _ = cluster_folders
    coarser = sitk.Shrink(logic.image_of(query[0], "CT"), [2, 2, 1])  # the same chest on a 64x64 grid
    other = volume_node_from_image(coarser, scene=mrml_scene, name="other CT")
    before = mrml_scene.GetNumberOfNodes()
    with pytest.raises(CovidWeakError, match="lesion_labels.nii.gz is not on the input's grid"):
        logic.load_clusters(other, out, model)
    assert mrml_scene.GetNumberOfNodes() == before


def test_a_case_without_lesions_gives_empty_outputs(logic, query, cluster_folders, tmp_path):
    model, _, labels, _, _ = cluster_folders
    empty = tmp_path / "no-lesions"
    empty.mkdir()
    write_lesions_csv([], empty / outputs.LESIONS_CSV)
    image = sitk.GetImageFromArray(np.zeros_like(labels))
    image.CopyInformation(logic.image_of(query[0], "CT"))
    sitk.WriteImage(image, str(empty / outputs.LESION_LABELS))
    created = logic.load_clusters(query[0], empty, model)
    assert created.segmentation.GetSegmentation().GetNumberOfSegments() == 0
    assert created.lesion_table.GetNumberOfRows() == 0
    assert created.library_table.GetNumberOfRows() > 0
    with pytest.raises(InputError, match="the table has 0 rows"):
        logic.jump_to_lesion(0)
