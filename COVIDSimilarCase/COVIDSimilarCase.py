"""COVIDSimilarCase: similar cases of a chest CT from a case index, and its lesion clusters (panel and self-test).

The panel is a thin shell over COVIDSimilarCaseLib.logic, which the Python
console, headless scripts and pytest use directly.
"""

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from covidweak.slicer.panel import setup_module_panel
from covidweak.slicer.runner import Where
from COVIDSimilarCaseLib import COVIDSimilarCaseLogic

BOUND_WIDGETS = {
    "query_volume": "queryVolumeSelector", "index_dir": "indexDirectoryPathLineEdit", "k": "neighborCountSpinBox",
    "device": "deviceComboBox", "ducn_weights": "ducnWeightsLineEdit", "slice_only": "sliceOnlyCheckBox", "data_dir": "dataDirectoryPathLineEdit",
    "cluster_model_dir": "clusterModelPathLineEdit", "replace_outputs": "replaceOutputsCheckBox",
}


class COVIDSimilarCase(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "COVID Similar Cases"
        self.parent.categories = ["Chest Imaging"]
        self.parent.dependencies = []
        self.parent.contributors = ["covidweak developers"]
        self.parent.helpText = (
            "Finds the k cases of a case index most similar to a query chest CT (or to one of its slices) and "
            "opens a selected case beside the query at the matching slice; builds a case index from a folder "
            "of CTs. Lesion clusters: the query's lesions as segments coloured by cluster, with a t-SNE plot "
            "against the cluster library.<br><b>Research use only, not for clinical use.</b>"
        )
        self.parent.acknowledgementText = (
            "Built on 3D Slicer, PyTorch, FAISS and scikit-learn. Methods follow the DuCN diagnosis and "
            "similar-case recommendation paper and the FeCNN lesion-clustering paper; see the covidweak "
            "documentation for references."
        )


class COVIDSimilarCaseWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        setup_module_panel(self, "COVIDSimilarCase", COVIDSimilarCaseLogic(work_dir=slicer.app.temporaryPath), BOUND_WIDGETS)
        self.ui.queryVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputsChanged)
        self.ui.indexDirectoryPathLineEdit.connect("currentPathChanged(QString)", self.onInputsChanged)
        self.ui.clusterModelPathLineEdit.connect("currentPathChanged(QString)", self.onInputsChanged)
        self.ui.buildIndexButton.connect("clicked(bool)", self.onBuildIndex)
        self.ui.searchButton.connect("clicked(bool)", self.onSearch)
        self.ui.clustersButton.connect("clicked(bool)", self.onClusters)
        self.ui.resultsTableView.connect("clicked(QModelIndex)", self.onResultClicked)
        self.ui.lesionTableView.connect("clicked(QModelIndex)", self.onLesionClicked)
        self.onSceneChanged()

    def cleanup(self):
        self.removeObservers()
        self.binding.release()

    def onSceneChanged(self, caller=None, event=None):
        self.binding.observe()
        self.onInputsChanged()
        self.showTables()

    def onInputsChanged(self, *unused):
        params = self.logic.parameters
        self.ui.clustersButton.enabled = params.query_volume is not None and bool(params.cluster_model_dir)
        self.ui.searchButton.enabled = False
        if params.query_volume is None and not params.index_dir:
            self.panel.show_status("Select a query CT volume and a case index folder.")
            return
        self.ui.searchButton.enabled = self.panel.attempt(
            lambda: self.logic.validate_inputs(params.query_volume, params.index_dir))

    def showTables(self):
        params = self.logic.parameters
        self.ui.resultsTableView.setMRMLTableNode(params.output_results_table)
        self.ui.lesionTableView.setMRMLTableNode(params.output_lesion_table)

    def onBuildIndex(self):
        if self.panel.run(lambda progress: self.logic.build_index(where=Where.CHILD_PROCESS, progress=progress),
                          "Building the case index in a separate process...", lambda status: status):
            self.onInputsChanged()  # the new index folder is a parameter already shown by the binding

    def onSearch(self):
        volume = self.ui.queryVolumeSelector.currentNode()
        table = self.panel.run(lambda progress: self.logic.search(volume, where=Where.CHILD_PROCESS, progress=progress),
                               "Searching the case index in a separate process...",
                               lambda table: f"{table.GetNumberOfRows()} similar cases; click a row to open one")
        if table is not None:
            self.showTables()
            self.showThumbnail(0)

    def showThumbnail(self, row):
        import qt

        def show():
            pixmap = qt.QPixmap(str(self.logic.match_thumbnail(row)))
            self.ui.thumbnailLabel.setPixmap(pixmap.scaledToWidth(min(pixmap.width(), 200)))
            return f"Preview: the matching slice of result {row + 1}"

        self.panel.attempt(show)

    def onResultClicked(self, index):
        # Red (query) and Yellow (similar case) side by side; the Logic fills and positions them.
        slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
        self.showThumbnail(index.row())
        self.panel.attempt(lambda: self.openedStatus(self.logic.open_case(index.row())))

    @staticmethod
    def openedStatus(opened):
        query = f", query slice {opened.query_slice}" if opened.query_slice is not None else ""
        return f"Opened '{opened.volume.GetName()}' at its matching slice {opened.match_slice}{query}"

    def onClusters(self):
        volume = self.ui.queryVolumeSelector.currentNode()
        created = self.panel.run(lambda progress: self.logic.find_clusters(volume, where=Where.CHILD_PROCESS, progress=progress),
                                 "Finding lesion clusters in a separate process...",
                                 lambda nodes: f"{nodes.lesion_table.GetNumberOfRows()} lesions; "
                                               "click a row to jump to one")
        if created is not None:
            self.showTables()
            slicer.modules.plots.logic().ShowChartInLayout(created.tsne_chart)

    def onLesionClicked(self, index):
        self.panel.attempt(lambda: "Lesion at R {:.1f}, A {:.1f}, S {:.1f}".format(
            *self.logic.jump_to_lesion(index.row())))


class COVIDSimilarCaseTest(ScriptedLoadableModuleTest):
    """Builds an index of a small phantom library with a random-weight DuCN (no trained weights needed),
    searches it and opens a case in child processes, as pytest's end-to-end test does."""

    def setUp(self):
        slicer.mrmlScene.Clear(0)

    def runTest(self):
        from covidweak.slicer.deps import ensure_dependencies

        ensure_dependencies()  # torch and the rest first, as the panel does before its first action
        self.setUp()
        self.test_index_search_and_open_phantom_case()

    def test_index_search_and_open_phantom_case(self):
        import tempfile
        from pathlib import Path

        from covidweak.slicer.mrml import volume_node_from_image
        from covidweak.phantom import PhantomConfig, generate_dataset, generate_study

        import torch
        from covidweak.models import build_model, save_weights

        folder = Path(tempfile.mkdtemp(prefix="covidsimilarcase-test-"))
        self.delayDisplay("Building a phantom library, a query CT and a random-weight DuCN")
        torch.manual_seed(0)
        save_weights(folder / "ducn.pt", build_model("ducn", {"widen_factor": 0.25}), "ducn",
                     {"widen_factor": 0.25}, {"input_size": 64})
        config = PhantomConfig(size=128, slices=32)
        generate_dataset(folder / "library", patients=2, studies_per_patient=1, seed=3, config=config)
        query = volume_node_from_image(generate_study(3, 0, "covid", config=config).ct, name="phantom CT")
        logic = COVIDSimilarCaseLogic(work_dir=str(folder))
        logic.parameters.ducn_weights = str(folder / "ducn.pt")
        logic.build_index(str(folder / "library"), str(folder / "index"), where=Where.CHILD_PROCESS)
        self.assertIn("case index", logic.validate_inputs(query, str(folder / "index")))
        table = logic.search(query, k=2, where=Where.CHILD_PROCESS)
        self.assertEqual(table.GetNumberOfRows(), 2)
        opened = logic.open_case(0)
        self.assertNotEqual(opened.volume.GetID(), query.GetID())
        self.delayDisplay("COVIDSimilarCase self-test passed")
