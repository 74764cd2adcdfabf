"""COVIDSimilarCase: browse the most similar cases of a chest CT in a case index (panel and self-test).

The panel is a thin shell over COVIDSimilarCaseLib.logic.
"""

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from covidweak.slicer_panel import PanelController, WidgetBinding
from COVIDSimilarCaseLib import COVIDSimilarCaseLogic


class COVIDSimilarCase(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "COVID Similar Cases"
        self.parent.categories = ["Chest Imaging"]
        self.parent.dependencies = []
        self.parent.contributors = ["covidweak developers"]
        self.parent.helpText = (
            "Finds the k cases of a case index most similar to a query chest CT, to compare diagnoses "
            "and disease course.<br><b>Research use only, not for clinical use.</b>"
        )
        self.parent.acknowledgementText = (
            "Built on 3D Slicer, PyTorch and FAISS. Methods follow the DuCN diagnosis and similar-case "
            "recommendation paper; see the covidweak documentation for references."
        )


class COVIDSimilarCaseWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        panel = slicer.util.loadUI(self.resourcePath("UI/COVIDSimilarCase.ui"))
        self.layout.addWidget(panel)
        self.ui = slicer.util.childWidgetVariables(panel)
        panel.setMRMLScene(slicer.mrmlScene)

        self.logic = COVIDSimilarCaseLogic()
        self.panel = PanelController(self.ui.statusLabel, self.ui.progressBar, self.ui.cancelButton,
                                     process_events=slicer.app.processEvents)
        self.binding = WidgetBinding(
            lambda: self.logic.parameters,
            {"query_volume": self.ui.queryVolumeSelector, "index_dir": self.ui.indexDirectoryPathLineEdit,
             "k": self.ui.neighborCountSpinBox},
            on_error=lambda message: self.panel.show_status(message, error=True),
        )
        self.binding.connect()
        self.ui.queryVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputsChanged)
        self.ui.indexDirectoryPathLineEdit.connect("currentPathChanged(QString)", self.onInputsChanged)
        self.ui.cancelButton.connect("clicked(bool)", self.panel.cancel)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneChanged)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndImportEvent, self.onSceneChanged)
        self.onSceneChanged()

    def cleanup(self):
        self.removeObservers()

    def onSceneChanged(self, caller=None, event=None):
        self.binding.update_widgets()
        self.onInputsChanged()

    def onInputsChanged(self, *unused):
        params = self.logic.parameters
        if params.query_volume is None and not params.index_dir:
            self.panel.show_status("Select a query CT volume and a case index folder.")
            return
        self.panel.attempt(lambda: self.logic.validate_inputs(params.query_volume, params.index_dir))


class COVIDSimilarCaseTest(ScriptedLoadableModuleTest):
    """Runs the Logic methods pytest covers on a phantom CT and a temporary folder, inside Slicer."""

    def setUp(self):
        slicer.mrmlScene.Clear(0)

    def runTest(self):
        self.setUp()
        self.test_validate_phantom_inputs()

    def test_validate_phantom_inputs(self):
        import tempfile
        from pathlib import Path

        from covidweak.errors import InputError
        from covidweak.mrml import volume_node_from_image
        from covidweak.phantom import PhantomConfig, generate_study

        study = generate_study(3, 0, "covid", config=PhantomConfig(size=128, slices=32))
        volume = volume_node_from_image(study.ct, name="phantom CT")
        logic = COVIDSimilarCaseLogic()
        with tempfile.TemporaryDirectory() as folder:
            with self.assertRaises(InputError):
                logic.validate_inputs(volume, str(Path(folder) / "missing"))
            (Path(folder) / "index.json").write_text("{}")
            self.assertIn("case index", logic.validate_inputs(volume, folder))
        self.delayDisplay("COVIDSimilarCase self-test passed")
