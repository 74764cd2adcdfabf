"""COVIDSeverity: COVID-19 severity from a chest CT or chest X-ray (panel and self-test).

The panel is a thin shell over COVIDSeverityLib.logic.
"""

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from covidweak.slicer_panel import PanelController, WidgetBinding
from COVIDSeverityLib import COVIDSeverityLogic


class COVIDSeverity(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "COVID Severity"
        self.parent.categories = ["Chest Imaging"]
        self.parent.dependencies = []
        self.parent.contributors = ["covidweak developers"]
        self.parent.helpText = (
            "Scores COVID-19 severity of a chest CT or of a chest X-ray (loaded as a one-slice volume) "
            "and localizes the findings.<br><b>Research use only, not for clinical use.</b>"
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

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        panel = slicer.util.loadUI(self.resourcePath("UI/COVIDSeverity.ui"))
        self.layout.addWidget(panel)
        self.ui = slicer.util.childWidgetVariables(panel)
        panel.setMRMLScene(slicer.mrmlScene)

        self.logic = COVIDSeverityLogic()
        self.panel = PanelController(self.ui.statusLabel, self.ui.progressBar, self.ui.cancelButton,
                                     process_events=slicer.app.processEvents)
        self.binding = WidgetBinding(lambda: self.logic.parameters, {"input_volume": self.ui.inputVolumeSelector},
                                     on_error=lambda message: self.panel.show_status(message, error=True))
        self.binding.connect()
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputChanged)
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
            self.panel.show_status("Select a chest CT or chest X-ray volume.")
            return
        self.panel.attempt(lambda: self.logic.describe_input(volume))


class COVIDSeverityTest(ScriptedLoadableModuleTest):
    """Runs the Logic methods pytest covers on a phantom CT and radiograph, inside Slicer."""

    def setUp(self):
        slicer.mrmlScene.Clear(0)

    def runTest(self):
        self.setUp()
        self.test_classify_phantom_ct_and_cxr()

    def test_classify_phantom_ct_and_cxr(self):
        import SimpleITK as sitk
        from covidweak.mrml import volume_node_from_image
        from covidweak.phantom import PhantomConfig, generate_study

        self.delayDisplay("Building a phantom CT and chest X-ray")
        study = generate_study(2, 0, "covid", config=PhantomConfig(size=128, slices=32))
        ct = volume_node_from_image(study.ct, name="phantom CT")
        cxr = volume_node_from_image(sitk.JoinSeries(study.cxr), name="phantom CXR")
        logic = COVIDSeverityLogic()
        self.assertEqual(logic.classify_input(ct), "ct")
        self.assertEqual(logic.classify_input(cxr), "cxr")
        self.delayDisplay("COVIDSeverity self-test passed")
