"""COVIDSeverity: COVID-19 severity from a chest CT or chest X-ray (panel and self-test).

The panel is a thin shell over COVIDSeverityLib.logic, which the Python
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
from COVIDSeverityLib import COVIDSeverityLogic

BOUND_WIDGETS = {
    "input_volume": "inputVolumeSelector", "device": "deviceComboBox", "diagnose": "diagnoseCheckBox",
    "severity_weights": "severityWeightsLineEdit", "lungs_weights": "lungsWeightsLineEdit",
    "diagnosis_weights": "diagnosisWeightsLineEdit",
    "seg_method": "segMethodComboBox", "opacity": "opacitySlider", "replace_outputs": "replaceOutputsCheckBox",
}


class COVIDSeverity(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "COVID Severity"
        self.parent.categories = ["Chest Imaging"]
        self.parent.dependencies = []
        self.parent.contributors = ["covidweak developers"]
        self.parent.helpText = (
            "Scores COVID-19 severity of a chest X-ray (loaded as a one-slice volume: probability overlay, "
            "zone lines, 3x2 zone array, global score 0-6) or of a chest CT (involvement per lung zone, "
            "zone score 0-30, diagnosis probabilities with a per-slice plot; select a point to jump to "
            "its slice). Export writes every table as CSV.<br><b>Research use only, not for clinical use.</b>"
        )
        self.parent.acknowledgementText = (
            "Built on 3D Slicer, SimpleITK and PyTorch. Methods follow the multiscale CT classification "
            "and the vision-transformer CXR severity papers; see the covidweak documentation for references."
        )


class COVIDSeverityWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.plotView = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        setup_module_panel(self, "COVIDSeverity", COVIDSeverityLogic(work_dir=slicer.app.temporaryPath), BOUND_WIDGETS)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputChanged)
        self.ui.opacitySlider.connect("valueChanged(double)", lambda value: self.panel.attempt(self.logic.set_opacity))
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.onSceneChanged()

    def cleanup(self):
        self.removeObservers()
        self.binding.release()
        if self.plotView is not None:
            self.plotView.disconnect("dataSelected(vtkStringArray*, vtkCollection*)", self.onPlotPointsSelected)

    def onSceneChanged(self, caller=None, event=None):
        self.binding.observe()
        self.onInputChanged(self.ui.inputVolumeSelector.currentNode())
        self.showResults()

    def onInputChanged(self, volume):
        usable = volume is not None and self.panel.attempt(lambda: self.logic.describe_input(volume))
        if volume is None:
            self.panel.show_status("Select a chest CT or chest X-ray volume.")
        self.ui.applyButton.enabled = usable

    def onApply(self):
        volume = self.ui.inputVolumeSelector.currentNode()
        self.ui.applyButton.enabled = False
        try:
            created = self.panel.run(lambda progress: self.logic.process(volume, where=Where.CHILD_PROCESS, progress=progress),
                                     "Scoring in a separate process...", lambda nodes: self.logic.summary_text())
        finally:
            self.ui.applyButton.enabled = volume is not None
        if created is not None:
            self.showResults()
            if created.slice_chart is not None:
                self.showSlicePlot(created.slice_chart)

    def showResults(self):
        import qt

        params = self.logic.parameters
        self.ui.zoneTableView.setMRMLTableNode(params.output_zone_table)
        self.ui.diagnosisTableView.setMRMLTableNode(params.output_diagnosis_table)
        self.ui.scoreLabel.text = self.logic.summary_text() or "No score yet"
        self.ui.exportButton.enabled = params.output_zone_table is not None
        self.ui.zoneTableWidget.clearContents()
        if not self.logic.last_report:
            return
        for row, cells in enumerate(self.logic.zone_cells()):
            for column, (text, color) in enumerate(cells):
                item = qt.QTableWidgetItem(text)
                item.setBackground(qt.QBrush(qt.QColor(color)))
                self.ui.zoneTableWidget.setItem(row, column, item)

    def showSlicePlot(self, chart):
        """Show the per-slice plot in the layout; selecting one of its points jumps to that slice."""
        slicer.modules.plots.logic().ShowChartInLayout(chart)
        plot_widget = slicer.app.layoutManager().plotWidget(0)
        if plot_widget is None:
            return
        plot_widget.mrmlPlotViewNode().SetInteractionMode(slicer.vtkMRMLPlotViewNode.InteractionModeSelectPoints)
        if self.plotView is None:
            self.plotView = plot_widget.plotView()
            self.plotView.connect("dataSelected(vtkStringArray*, vtkCollection*)", self.onPlotPointsSelected)

    def onPlotPointsSelected(self, series_ids, selections):
        """All series share the slice table's rows, so the first selected point's row gives the slice."""
        points = [selections.GetItemAsObject(i) for i in range(selections.GetNumberOfItems())]
        points = [ids.GetValue(0) for ids in points if ids is not None and ids.GetNumberOfValues()]
        if not points:
            return

        def jump():
            k = self.logic.slice_of_point(int(points[0]))
            return "Slice {} at S {:.1f} mm".format(k, self.logic.jump_to_slice(k)[2])

        self.panel.attempt(jump)

    def onExport(self):
        folder = self.ui.exportDirectoryPathLineEdit.currentPath
        self.panel.attempt(lambda: f"Wrote {len(self.logic.export_csv(folder))} CSV files to {folder}")


class COVIDSeverityTest(ScriptedLoadableModuleTest):
    """Scores a phantom chest X-ray and CT through the real commands in a child process, as pytest does;
    random-weight severity and diagnosis networks (scores mean nothing), so no trained weights are needed."""

    def setUp(self):
        slicer.mrmlScene.Clear(0)

    def runTest(self):
        from covidweak.slicer.deps import ensure_dependencies

        ensure_dependencies()  # torch and the rest first, as the panel does before its first action
        self.setUp()
        self.test_score_phantom_cxr_and_ct()

    def test_score_phantom_cxr_and_ct(self):
        import os
        import tempfile

        import torch
        from covidweak.diagnosis.model import METHOD, build_diagnosis_model
        from covidweak.models import build_model, save_weights
        from covidweak.slicer.mrml import volume_node_from_image
        from covidweak.phantom import PhantomConfig, generate_study

        self.delayDisplay("Building a phantom CT and chest X-ray, and random-weight networks")
        folder = tempfile.mkdtemp(prefix="covidseverity-test-")
        torch.manual_seed(0)
        save_weights(os.path.join(folder, "severity.pt"), build_model("severity", {"size": "light"}), "severity",
                     {"size": "light"}, {"input_size": 128})
        arch = {"classes": ["covid", "cap", "normal"], "width": 0.125, "top_k": 2}
        save_weights(os.path.join(folder, "diagnosis.pt"), build_diagnosis_model(METHOD, arch), METHOD, arch,
                     {"input_size": 32})
        study = generate_study(2, 0, "covid", config=PhantomConfig(size=128, slices=32))
        ct = volume_node_from_image(study.ct, name="phantom CT")
        cxr = volume_node_from_image(study.cxr, name="phantom CXR")
        logic = COVIDSeverityLogic(work_dir=folder)
        logic.parameters.severity_weights = os.path.join(folder, "severity.pt")
        logic.parameters.diagnosis_weights = os.path.join(folder, "diagnosis.pt")
        self.assertEqual(logic.classify_input(cxr), "cxr")
        self.assertEqual(logic.classify_input(ct), "ct")
        created = logic.process(cxr, device="cpu", where=Where.CHILD_PROCESS)
        self.assertEqual(len(created.zone_lines), 4)
        self.assertEqual(created.zone_segmentation.GetSegmentation().GetNumberOfSegments(), 6)
        self.assertTrue(0 <= created.score <= 6)
        created = logic.process(ct, device="cpu", diagnose=True, where=Where.CHILD_PROCESS)
        self.assertTrue(0 <= created.score <= 30)
        self.assertEqual(created.zone_table.GetNumberOfRows(), 9)
        self.assertGreater(created.slice_table.GetNumberOfRows(), 0)
        k = logic.slice_of_point(0)
        self.assertEqual(len(logic.jump_to_slice(k)), 3)
        self.delayDisplay("COVIDSeverity self-test passed")
