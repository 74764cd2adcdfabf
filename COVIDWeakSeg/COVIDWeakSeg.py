"""COVIDWeakSeg: weakly supervised COVID-19 lesion segmentation of chest CT (panel and self-test).

The panel is a thin shell: every decision lives in COVIDWeakSegLib.logic, which
the Python console, headless scripts and pytest use directly.
"""

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from covidweak.slicer_panel import PanelController, WidgetBinding
from COVIDWeakSegLib import COVIDWeakSegLogic


class COVIDWeakSeg(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "COVID Weak Segmentation"
        self.parent.categories = ["Chest Imaging"]
        self.parent.dependencies = []
        self.parent.contributors = ["covidweak developers"]
        self.parent.helpText = (
            "Segments the lungs of a chest CT and, with a weakly supervised network (M-SEAM-NAM), "
            "shows COVID-19 lesion probabilities. T_fg and T_bg are the foreground and background "
            "thresholds on the probability map.<br><b>Research use only, not for clinical use.</b>"
        )
        self.parent.acknowledgementText = (
            "Built on 3D Slicer, SimpleITK, PyTorch and MONAI. Methods follow the M-SEAM-NAM weakly "
            "supervised CT segmentation paper; see the covidweak documentation for references."
        )


class COVIDWeakSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        panel = slicer.util.loadUI(self.resourcePath("UI/COVIDWeakSeg.ui"))
        self.layout.addWidget(panel)
        self.ui = slicer.util.childWidgetVariables(panel)
        panel.setMRMLScene(slicer.mrmlScene)

        self.logic = COVIDWeakSegLogic()
        self.panel = PanelController(self.ui.statusLabel, self.ui.progressBar, self.ui.cancelButton,
                                     process_events=slicer.app.processEvents)
        self.binding = WidgetBinding(
            lambda: self.logic.parameters,
            {"input_volume": self.ui.inputVolumeSelector, "t_fg": self.ui.foregroundThresholdSlider,
             "t_bg": self.ui.backgroundThresholdSlider, "output_segmentation": self.ui.outputSegmentationSelector},
            on_error=lambda message: self.panel.show_status(message, error=True),
        )
        self.binding.connect()
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputChanged)
        self.ui.foregroundThresholdSlider.connect("valueChanged(double)", self.onThresholdChanged)
        self.ui.backgroundThresholdSlider.connect("valueChanged(double)", self.onThresholdChanged)
        self.ui.segmentLungsButton.connect("clicked(bool)", self.onSegmentLungs)
        self.ui.cancelButton.connect("clicked(bool)", self.panel.cancel)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneChanged)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndImportEvent, self.onSceneChanged)
        self.onSceneChanged()

    def cleanup(self):
        self.removeObservers()

    def onSceneChanged(self, caller=None, event=None):
        self.binding.update_widgets()
        self.onInputChanged(self.ui.inputVolumeSelector.currentNode())

    def onInputChanged(self, volume):
        if volume is None:
            self.ui.segmentLungsButton.enabled = False
            self.panel.show_status("Select a chest CT volume.")
            return
        self.ui.segmentLungsButton.enabled = self.panel.attempt(lambda: self.logic.validate_input(volume))

    def onThresholdChanged(self, value=None):
        params = self.logic.parameters
        self.panel.attempt(lambda: self.logic.check_thresholds(params.t_fg, params.t_bg))

    def onSegmentLungs(self):
        volume = self.ui.inputVolumeSelector.currentNode()
        self.ui.segmentLungsButton.enabled = False
        try:
            node = self.panel.run(
                lambda progress: self.logic.segment_lungs(volume, progress=progress),
                "Segmenting lungs...",
                lambda node: self.logic.lungs_status(node, self.logic.last_lung_volumes_ml),
            )
        finally:
            self.ui.segmentLungsButton.enabled = volume is not None
        if node is not None:
            self.binding.update_widgets()


class COVIDWeakSegTest(ScriptedLoadableModuleTest):
    """Runs the Logic methods pytest covers on a small phantom, inside Slicer."""

    def setUp(self):
        slicer.mrmlScene.Clear(0)

    def runTest(self):
        self.setUp()
        self.test_segment_phantom_lungs()

    def test_segment_phantom_lungs(self):
        from covidweak.mrml import volume_node_from_image
        from covidweak.phantom import PhantomConfig, generate_study

        self.delayDisplay("Building a phantom chest CT")
        study = generate_study(1, 0, "covid", config=PhantomConfig(size=128, slices=32))
        volume = volume_node_from_image(study.ct, name="phantom CT")
        logic = COVIDWeakSegLogic()
        self.assertIn("CT", logic.validate_input(volume))
        node = logic.segment_lungs(volume)
        segmentation = node.GetSegmentation()
        names = {segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())}
        self.assertEqual(names, {"Right lung", "Left lung"})
        self.assertTrue(all(ml > 0 for ml in logic.last_lung_volumes_ml.values()))
        self.assertIs(logic.parameters.output_segmentation, node)
        self.delayDisplay("COVIDWeakSeg self-test passed")
