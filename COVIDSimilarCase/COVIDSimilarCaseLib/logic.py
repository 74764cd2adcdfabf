"""COVIDSimilarCase logic: similar-case search in a case index, and lesion clusters of a chest CT.

As in COVIDSeverity, running a command and loading its output are separate:

* ``build_index``, ``search`` and ``find_clusters`` run ``covidweak index
  build``, ``covidweak similar`` and ``covidweak clusters`` in a child process
  (panel: progress, Cancel kills it) or in this process (scripts), as ``where`` says
  (:class:`~covidweak.slicer.runner.Where`);
* ``load_similar`` and ``load_clusters`` turn their output files into nodes.

The user's query volume is only read: a similar case opens as a new volume.
No qt here: the panel, the Python console and pytest share these methods.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from covidweak.device import check_module_device
from covidweak.errors import InputError
from covidweak.slicer.parameters import ParameterizedLogic, describe_image
from covidweak.slicer.runner import Where, run_command

from . import display, outputs
from .parameters import COVIDSimilarCaseParameters

RESULT_COLUMNS = ("rank", "distance", "patient_id", "study_id", "diagnosis", "lesions", "query_slice", "match_slice",
                  "source_path")
LESION_TABLE_COLUMNS = ("lesion_id", "cluster", "score", "type", "centroid_r", "centroid_a", "centroid_s",
                        "tsne_x", "tsne_y")


@dataclass
class OpenedCase:
    """What the panel needs to show one similar case beside the query."""

    volume: object  # the similar study, a new volume node
    match_slice: int
    match_ras: tuple
    query_slice: Optional[int]
    query_ras: Optional[tuple]


@dataclass
class ClusterNodes:
    segmentation: object  # one segment per lesion, coloured by cluster
    lesion_table: object
    library_table: object
    tsne_chart: object  # two series: library lesions, this case's lesions


class COVIDSimilarCaseLogic(ParameterizedLogic):
    MODULE_NAME = "COVIDSimilarCase"
    PARAMETERS = COVIDSimilarCaseParameters

    def __init__(self, scene=None, work_dir: Optional[str] = None):
        super().__init__(scene)
        self.work_dir = work_dir  # where commands write; None = the system temp folder

    # ------------------------------------------------------------ checks

    def validate_inputs(self, volume, index_dir) -> str:
        """One status line when the query CT and index folder are usable; otherwise an error naming the fix.

        The folder is checked before the volume so that a wrong path is
        reported without first converting a large CT.
        """
        folder = check_index_dir(index_dir)
        image = self._checked_ct(volume, "query CT volume")
        return f"{volume.GetName()}: CT, {describe_image(image)}; case index {folder}"

    def _checked_ct(self, volume, what: str):
        from covidweak.validate import check_ct

        image = self.image_of(volume, what)
        check_ct(image)
        return image

    def _update(self, **values) -> None:
        params = self.parameters
        for name, value in values.items():
            if value is not None:
                setattr(params, name, value)
        check_module_device(params.device)

    def _ducn_weights(self) -> list:
        weights = self.parameters.ducn_weights.strip()
        return ["--weights", weights] if weights else []

    def _record(self, role: str, node):
        from covidweak.slicer.outputs import mark_created, release_output

        params = self.parameters
        release_output(self.scene, getattr(params, role), self.MODULE_NAME, params.replace_outputs)
        setattr(params, role, mark_created(node, self.MODULE_NAME))
        return node

    # ------------------------------------------------------------ case index

    def build_index(self, data_dir=None, index_dir=None, where: Where = Where.IN_PROCESS, progress=None) -> str:
        """``covidweak index build`` from a folder of CTs (or a manifest) into ``index_dir``; resumable."""
        self._update(data_dir=data_dir, index_dir=index_dir)
        params = self.parameters
        data = Path(params.data_dir).expanduser()
        if not params.data_dir.strip() or not data.exists():
            raise InputError(f"CT folder '{params.data_dir}' does not exist: choose a folder of CTs or a manifest.csv")
        if not params.index_dir.strip():
            raise InputError("no case index folder selected: choose where the new index is written")
        index = Path(params.index_dir).expanduser()
        if not index.parent.is_dir():
            raise InputError(f"'{index.parent}' does not exist: create it, or choose another index folder")
        run_command(["index", "build", "--data", data, "--out", index, "--device", params.device,
                   *self._ducn_weights()], where, progress, self.work_dir)
        return f"case index {index} built from {data}"

    # ------------------------------------------------------------ similar cases

    def search(self, volume, index_dir=None, k: Optional[int] = None, slice_index: Optional[int] = None,
               where: Where = Where.IN_PROCESS, progress=None):
        """The ``k`` cases of the index most similar to ``volume``; returns the new results table.

        ``slice_index`` queries that slice only (``--slice``); None queries the
        whole CT, or the Red view's slice when ``slice_only`` is on.
        """
        import SimpleITK as sitk

        self._update(index_dir=index_dir, k=k, query_volume=volume)
        params = self.parameters
        index = check_index_dir(params.index_dir)  # before converting the CT, as validate_inputs does
        image = self._checked_ct(volume, "query CT volume")
        if slice_index is None and params.slice_only:
            slice_index = self.current_slice(volume)
        folder = Path(tempfile.mkdtemp(prefix="covidweak-similar-", dir=self.work_dir))
        try:
            sitk.WriteImage(image, str(folder / "query.nrrd"))
            argv = ["similar", folder / "query.nrrd", "--index", index,
                    "--k", params.k, "--out", folder / outputs.SIMILAR_JSON, "--device", params.device,
                    *self._ducn_weights()]
            if slice_index is not None:
                argv += ["--slice", int(slice_index)]
            run_command(argv, where, progress, self.work_dir)
            return self.load_similar(volume, folder / outputs.SIMILAR_JSON)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def load_similar(self, volume, similar_json):
        """A results table (rank, distance, patient, study, diagnosis, lesions, slices, source) from ``similar.json``."""
        from covidweak.slicer.outputs import table_node_from_rows

        report = outputs.read_similar(similar_json)
        self.parameters.query_volume = volume
        rows = [[result[column] for column in RESULT_COLUMNS] for result in report["results"]]
        table = table_node_from_rows(self.scene, f"{volume.GetName()} similar cases", RESULT_COLUMNS, rows)
        return self._record("output_results_table", table)

    def open_case(self, row: int) -> OpenedCase:
        """Load result ``row`` (0-based) as a new volume and show it beside the query at the matching slices.

        The query volume is neither unloaded nor modified.
        """
        from covidweak.io import read_ct
        from covidweak.slicer.mrml import volume_node_from_image
        from covidweak.slicer.outputs import slice_centre_ras

        params = self.parameters
        result = self._result_row(row)
        name = f"similar #{int(result['rank'])} {result['study_id']}"
        case = self._record("output_case_volume", volume_node_from_image(read_ct(source_of(result)), scene=self.scene,
                                                                         name=name))
        match_slice = int(result["match_slice"])
        query, query_slice = params.query_volume, result["query_slice"]
        known = query is not None and query.GetImageData() is not None and str(query_slice) not in ("", "None")
        opened = OpenedCase(case, match_slice, slice_centre_ras(case, match_slice),
                            int(query_slice) if known else None,
                            slice_centre_ras(query, int(query_slice)) if known else None)
        self.show_side_by_side(opened)
        return opened

    def match_thumbnail(self, row: int = 0) -> Path:
        """A lung-window PNG of the matching slice of result ``row`` (default the best match), for the panel.

        Written into the work folder (the system temp folder when None) and
        replaced on the next call for the same study and slice.
        """
        import numpy as np
        import SimpleITK as sitk
        from covidweak.io import read_ct
        from covidweak.viz import LUNG_WINDOW, save_png, window

        result = self._result_row(row)
        voxels = sitk.GetArrayViewFromImage(read_ct(source_of(result)))
        k = int(result["match_slice"])
        if not 0 <= k < voxels.shape[0]:
            raise InputError(f"match slice {k} is outside study {result['study_id']}: rebuild the case index")
        grey = window(voxels[k], *LUNG_WINDOW)
        folder = Path(self.work_dir or tempfile.gettempdir())
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(result["study_id"]))
        return save_png(np.repeat(grey[..., None], 3, axis=2), folder / f"covidweak-match-{name}-{k}.png",
                        overwrite=True)

    def _result_row(self, row: int) -> dict:
        from covidweak.slicer.outputs import table_node_rows

        table = self.parameters.output_results_table
        if table is None:
            raise InputError("no similar cases yet: press Search first")
        columns, rows = table_node_rows(table)
        if not 0 <= row < len(rows):
            raise InputError(f"result row {row} does not exist: the table has {len(rows)} rows")
        return dict(zip(columns, rows[row]))

    def show_side_by_side(self, opened: OpenedCase) -> None:
        """Query in the Red slice view at its slice, the similar case in Yellow at the matching slice."""
        from covidweak.slicer.outputs import show_in_slice_views

        query = self.parameters.query_volume
        placements = [(display.MATCH_VIEW, opened.volume, opened.match_ras)]
        if query is not None:
            placements.append((display.QUERY_VIEW, query, opened.query_ras))
        for view, volume, ras in placements:
            show_in_slice_views(self.scene, volume, layout_names=(view,))
            node = self._slice_node(view)
            if node is not None and ras is not None:
                node.JumpSliceByCentering(*ras)

    def _slice_node(self, view: str):
        for i in range(self.scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
            node = self.scene.GetNthNodeByClass(i, "vtkMRMLSliceNode")
            if node.GetLayoutName() == view:
                return node
        return None

    def current_slice(self, volume, view: str = display.QUERY_VIEW) -> int:
        """Slice k of ``volume`` at the centre of slice view ``view`` (the "current slice" of a query)."""
        import vtk

        node = self._slice_node(view)
        if node is None:
            raise InputError(f"no {view} slice view: switch to a layout that shows it, or query the whole CT")
        matrix = vtk.vtkMatrix4x4()
        volume.GetRASToIJKMatrix(matrix)
        ras = [node.GetSliceToRAS().GetElement(r, 3) for r in range(3)]
        k = round(matrix.MultiplyPoint((*ras, 1.0))[2])
        depth = volume.GetImageData().GetDimensions()[2]
        if not 0 <= k < depth:
            raise InputError(f"the {view} view is outside '{volume.GetName()}': scroll to a slice of the CT")
        return int(k)

    # ------------------------------------------------------------ lesion clusters

    def find_clusters(self, volume, model_dir=None, where: Where = Where.IN_PROCESS, progress=None) -> ClusterNodes:
        """``covidweak clusters`` of ``volume`` with a fitted cluster model; returns the created nodes."""
        import SimpleITK as sitk

        self._update(cluster_model_dir=model_dir)
        model = check_model_dir(self.parameters.cluster_model_dir)
        image = self._checked_ct(volume, "CT volume")
        folder = Path(tempfile.mkdtemp(prefix="covidweak-clusters-", dir=self.work_dir))
        try:
            sitk.WriteImage(image, str(folder / "ct.nrrd"))
            run_command(["clusters", "--ct", folder / "ct.nrrd", "--model", model, "--out", folder / "out",
                       "--device", self.parameters.device], where, progress, self.work_dir)
            return self.load_clusters(volume, folder / "out", model)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def load_clusters(self, volume, out_dir, model_dir) -> ClusterNodes:
        """Nodes for a ``covidweak clusters --ct`` output folder and the model folder it used."""
        import SimpleITK as sitk
        from covidweak.slicer.mrml import on_volume_grid, segmentation_node_from_labels
        from covidweak.slicer.outputs import plot_chart_node, table_node_from_rows

        reference = self._checked_ct(volume, "CT volume")
        lesions = outputs.read_lesions(Path(out_dir) / outputs.LESIONS_CSV)
        library = outputs.read_lesions(check_model_dir(model_dir) / outputs.LESIONS_CSV)
        labels = on_volume_grid(outputs.read_lesion_labels(out_dir), reference, outputs.LESION_LABELS)
        labels = sitk.Cast(labels, sitk.sitkUInt16)
        base = volume.GetName()
        segmentation = self._record("output_lesion_segmentation", segmentation_node_from_labels(
            labels, {row["lesion_id"]: display.lesion_segment_name(row) for row in lesions},
            {row["lesion_id"]: display.cluster_color(row["cluster"]) for row in lesions},
            scene=self.scene, name=f"{base} lesion clusters", reference_volume=volume))
        rows = [[row[c] for c in LESION_TABLE_COLUMNS] for row in lesions]
        lesion_table = self._record("output_lesion_table", table_node_from_rows(
            self.scene, f"{base} lesion clusters", LESION_TABLE_COLUMNS, rows))
        library_table = self._record("output_library_table", table_node_from_rows(
            self.scene, "cluster library lesions", outputs.LESION_COLUMNS,
            [[row[c] for c in outputs.LESION_COLUMNS] for row in library]))
        series = [{"table": library_table, "x": "tsne_x", "y": "tsne_y", "name": "library lesions",
                   "color": display.LIBRARY_COLOR, "scatter": True},
                  {"table": lesion_table, "x": "tsne_x", "y": "tsne_y", "name": f"{base} lesions",
                   "color": display.CASE_COLOR, "scatter": True}]
        chart = self._record("output_tsne_chart", plot_chart_node(
            self.scene, f"{base} lesion t-SNE", series, title="Lesions in the cluster model's t-SNE map",
            x_title="t-SNE 1", y_title="t-SNE 2"))
        return ClusterNodes(segmentation, lesion_table, library_table, chart)

    def jump_to_lesion(self, row: int) -> tuple[float, float, float]:
        """RAS centroid of lesion ``row`` (0-based) of the cluster table; centres every slice view there."""
        from covidweak.slicer.outputs import jump_all_slices, table_node_rows

        table = self.parameters.output_lesion_table
        if table is None:
            raise InputError("no lesion clusters yet: press Find clusters first")
        columns, rows = table_node_rows(table)
        if not 0 <= row < len(rows):
            raise InputError(f"lesion row {row} does not exist: the table has {len(rows)} rows")
        ras = tuple(float(rows[row][columns.index(f"centroid_{axis}")]) for axis in "ras")
        jump_all_slices(self.scene, ras)
        return ras


def source_of(result: dict) -> Path:
    """The CT file of a result row; InputError when it has moved since the index was built."""
    source = Path(str(result["source_path"]))
    if not source.exists():
        raise InputError(f"the CT of study {result['study_id']} is no longer at {source}: "
                         "restore it, or rebuild the case index")
    return source


def check_index_dir(index_dir) -> Path:
    """The case index folder as a Path, or :class:`InputError` for an empty, missing or wrong path."""
    if index_dir is None or not str(index_dir).strip():
        raise InputError("no case index folder selected: choose the folder holding the case index")
    folder = Path(str(index_dir)).expanduser()
    if not folder.exists():
        raise InputError(f"case index folder '{folder}' does not exist: choose an existing folder")
    if not folder.is_dir():
        raise InputError(f"'{folder}' is a file, not a folder: choose the folder that contains it")
    if not any(folder.iterdir()):
        raise InputError(f"case index folder '{folder}' is empty: build the case index there first")
    return folder


def check_model_dir(model_dir) -> Path:
    """A cluster model folder (it holds the library's lesions.csv), or :class:`InputError` naming the fix."""
    if model_dir is None or not str(model_dir).strip():
        raise InputError("no cluster model folder selected: choose a folder written by covidweak clusters --data")
    folder = Path(str(model_dir)).expanduser()
    if not (folder / outputs.LESIONS_CSV).is_file():
        raise InputError(f"'{folder}' holds no {outputs.LESIONS_CSV}: choose a folder written by "
                         "covidweak clusters --data ... --out")
    return folder
