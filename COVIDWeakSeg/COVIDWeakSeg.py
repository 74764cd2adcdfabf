"""COVIDWeakSeg: weakly supervised COVID-19 lesion segmentation of chest CT (panel, sample data, self-test).

The panel is a thin shell: every decision lives in COVIDWeakSegLib, which the
Python console, headless scripts and pytest use directly.
"""

import functools
import os

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from covidweak.slicer.panel import setup_module_panel
from covidweak.slicer.runner import Where
from COVIDWeakSegLib import COVIDWeakSegLogic

BOUND_WIDGETS = {
    "input_volume": "inputVolumeSelector", "method": "methodComboBox", "weights": "weightsLineEdit",
    "device": "deviceComboBox", "t_fg": "foregroundThresholdSlider", "t_bg": "backgroundThresholdSlider",
    "opacity": "opacitySlider", "uncertain_segment": "uncertainCheckBox", "lesion_boxes": "lesionBoxesCheckBox",
    "replace_outputs": "replaceOutputsCheckBox", "output_segmentation": "outputSegmentationSelector",
}


class COVIDWeakSeg(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "COVID Weak Segmentation"
        self.parent.categories = ["Chest Imaging"]
        self.parent.dependencies = []
        self.parent.contributors = ["covidweak developers"]
        self.parent.helpText = (
            "Shows the COVID-19 lesion probability of a chest CT from a weakly supervised network (M-SEAM-NAM "
            "and baselines) as an overlay; T_fg (foreground) moves the visible threshold at once, T_bg (background) "
            "bounds the uncertain band. Lesion table, involvement per lung zone, segmentation and Hu et al. boxes."
            "<br><b>Research use only, not for clinical use.</b>"
        )
        self.parent.acknowledgementText = (
            "Built on 3D Slicer, SimpleITK, PyTorch and MONAI. Methods follow the M-SEAM-NAM weakly "
            "supervised CT segmentation paper; see the covidweak documentation for references."
        )
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """Offer the phantom CTs in the Sample Data module; each is generated on first load, then cached."""
    import SampleData
    from COVIDWeakSegLib.samples import CATEGORY, SAMPLES

    icon = os.path.join(os.path.dirname(__file__), "Resources", "Icons", "COVIDWeakSeg.png")
    for sample in SAMPLES:
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category=CATEGORY, sampleName=sample.name, uris=f"covidweak-phantom:{sample.name}",
            fileNames=sample.file_name, nodeNames=sample.name, thumbnailFileName=icon,
            customDownloader=functools.partial(loadPhantomSample, sample.name))


def loadPhantomSample(name, source=None):
    from COVIDWeakSegLib.samples import sample_by_name, sample_path

    path = sample_path(sample_by_name(name), os.path.join(slicer.app.temporaryPath, "covidweak-samples"))
    return slicer.util.loadVolume(str(path), {"name": name})


class COVIDWeakSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        setup_module_panel(self, "COVIDWeakSeg", COVIDWeakSegLogic(work_dir=slicer.app.temporaryPath), BOUND_WIDGETS)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputChanged)
        for slider in (self.ui.foregroundThresholdSlider, self.ui.backgroundThresholdSlider):
            slider.connect("valueChanged(double)", lambda value: self.panel.attempt(self.logic.set_thresholds))
        self.ui.opacitySlider.connect("valueChanged(double)", lambda value: self.panel.attempt(self.logic.set_opacity))
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.createSegmentationButton.connect("clicked(bool)", self.onCreateSegmentation)
        self.ui.segmentLungsButton.connect("clicked(bool)", self.onSegmentLungs)
        self.ui.lesionTableView.connect("clicked(QModelIndex)", self.onLesionClicked)
        self.onSceneChanged()

    def cleanup(self):
        self.removeObservers()
        self.binding.release()

    def onSceneChanged(self, caller=None, event=None):
        self.binding.observe()
        self.onInputChanged(self.ui.inputVolumeSelector.currentNode())
        self.showResults()

    def onInputChanged(self, volume):
        usable = volume is not None and self.panel.attempt(lambda: self.logic.validate_input(volume))
        if volume is None:
            self.panel.show_status("Select a chest CT volume.")
        for button in (self.ui.applyButton, self.ui.segmentLungsButton):
            button.enabled = usable

    def showResults(self):
        params = self.logic.parameters
        self.ui.lesionTableView.setMRMLTableNode(params.output_lesion_table)
        self.ui.summaryLabel.text = self.logic.summary_text()
        self.ui.createSegmentationButton.enabled = params.output_probability is not None

    def onApply(self):
        volume = self.ui.inputVolumeSelector.currentNode()
        self.ui.applyButton.enabled = False
        try:
            created = self.panel.run(lambda progress: self.logic.process(volume, where=Where.CHILD_PROCESS, progress=progress),
                                     "Running lesion inference in a separate process...",
                                     lambda nodes: f"{nodes.lesion_table.GetNumberOfRows()} lesions at "
                                                   f"T_fg {self.logic.parameters.t_fg:.2f}; click a row to jump to it")
        finally:
            self.ui.applyButton.enabled = volume is not None
        if created is not None:
            self.showResults()

    def onCreateSegmentation(self):
        self.panel.attempt(lambda: f"Created '{self.logic.create_segmentation().GetName()}'")

    def onLesionClicked(self, index):
        self.panel.attempt(lambda: "Lesion {} at R {:.1f}, A {:.1f}, S {:.1f}".format(
            index.row() + 1, *self.logic.jump_to_lesion(index.row())))

    def onSegmentLungs(self):
        volume = self.ui.inputVolumeSelector.currentNode()
        # The new lung segmentation becomes the output parameter; the binding shows it in the selector.
        self.panel.run(lambda progress: self.logic.segment_lungs(volume, progress=progress), "Segmenting lungs...",
                       lambda node: self.logic.lungs_status(node, self.logic.last_lung_volumes_ml))


class COVIDWeakSegTest(ScriptedLoadableModuleTest):
    """Runs the Logic methods pytest covers on a small phantom with random-weight networks, inside Slicer."""

    def setUp(self):
        slicer.mrmlScene.Clear(0)

    def runTest(self):
        from covidweak.slicer.deps import ensure_dependencies

        ensure_dependencies()  # torch and the rest first, as the panel does before its first action
        self.setUp()
        self.test_phantom_lesion_workflow()

    def test_phantom_lesion_workflow(self):
        import tempfile

        import torch
        from covidweak.models import build_model, save_weights
        from covidweak.slicer.mrml import volume_node_from_image
        from covidweak.phantom import PhantomConfig, generate_study

        self.delayDisplay("Building a phantom chest CT and random-weight networks")
        study = generate_study(1, 0, "covid", config=PhantomConfig(size=128, slices=32))
        volume = volume_node_from_image(study.ct, name="phantom CT")
        folder = tempfile.mkdtemp(prefix="covidweakseg-test-")
        torch.manual_seed(0)
        weights = os.path.join(folder, "cam.pt")
        save_weights(weights, build_model("cam", {"backbone": "light"}), "cam", {"backbone": "light"}, {"input_size": 64})
        logic = COVIDWeakSegLogic(work_dir=folder)
        self.assertIn("CT", logic.validate_input(volume))
        created = logic.process(volume, method="cam", weights=weights, t_fg=0.5, device="cpu", where=Where.CHILD_PROCESS)
        self.assertEqual(slicer.util.arrayFromVolume(created.probability).shape, slicer.util.arrayFromVolume(volume).shape)
        logic.set_thresholds(t_fg=0.3)
        self.assertEqual(created.probability.GetDisplayNode().GetLowerThreshold(), 0.3)
        segmentation = logic.create_segmentation(uncertain=True)
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 2)
        if created.lesion_table.GetNumberOfRows():
            self.assertEqual(len(logic.jump_to_lesion(0)), 3)
        self.delayDisplay("COVIDWeakSeg self-test passed")
