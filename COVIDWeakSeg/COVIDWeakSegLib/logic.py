"""COVIDWeakSeg logic: lesion probability of a chest CT as an overlay, lesion table, summary and segments.

No qt here: the same methods serve the panel, the Python console, headless
scripts and the tests. ``process`` runs inference where it is told
(:class:`~covidweak.slicer.runner.Where`): in this process for scripts, or, for the
panel, in a child ``covidweak segment`` process whose progress lines drive the
progress bar and whose process group Cancel kills; the Hu et al. boxes then come
from the same child, so no torch work runs in Slicer's GUI process.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from covidweak.device import check_module_device
from covidweak.errors import InputError, ModelError
from covidweak.slicer.parameters import ParameterizedLogic, describe_image
from covidweak.slicer.runner import Where, run_command

from . import display, nodes, results
from .parameters import COVIDWeakSegParameters

LUNG_NAMES = {1: "Right lung", 2: "Left lung"}
LUNG_COLORS = {1: (0.50, 0.68, 0.95), 2: (0.95, 0.72, 0.45)}


@dataclass
class WeakSegNodes:
    """The nodes one ``process`` call created (``lesion_boxes`` empty unless asked for)."""

    probability: object
    lesion_table: object
    summary_table: object
    lesion_boxes: list = field(default_factory=list)


class COVIDWeakSegLogic(ParameterizedLogic):
    MODULE_NAME = "COVIDWeakSeg"
    PARAMETERS = COVIDWeakSegParameters

    def __init__(self, scene=None, work_dir: Optional[str] = None):
        super().__init__(scene)
        self.work_dir = work_dir  # where the child process writes; None = the system temp folder
        self.last_result = None  # the SegmentResult behind the current outputs

    # ------------------------------------------------------------ checks

    def validate_input(self, volume) -> str:
        """One status line describing a usable CT, or :class:`CovidWeakError` naming the fix."""
        image = self._checked_ct(volume)
        return f"{volume.GetName()}: CT, {describe_image(image)}"

    def _checked_ct(self, volume):
        from covidweak.validate import check_ct

        image = self.image_of(volume, "input CT volume")
        check_ct(image)
        return image

    def check_thresholds(self, t_fg: float, t_bg: float) -> str:
        """Status line for a valid threshold pair (covidweak's rule, the CLI's too: 0 <= T_bg <= T_fg < 1)."""
        from covidweak.weakseg.infer import check_thresholds

        check_thresholds(t_fg, t_bg)
        return f"T_fg={t_fg:.2f}, T_bg={t_bg:.3f}"

    def check_model(self, method: str, weights: str = "") -> str:
        """The weights to load for ``method`` (a registry name or an existing file); ModelError otherwise."""
        from covidweak.models import METHODS
        from covidweak.models.weights import registry_entry

        if method not in METHODS:
            raise ModelError(f"unknown method '{method}': choose one of {', '.join(METHODS)}")
        weights = (weights or "").strip() or f"{method}-light"
        path = Path(weights).expanduser()
        if path.suffix or len(path.parts) > 1:
            if not path.is_file():
                raise ModelError(f"weight file {path} not found: choose an existing .pt file or a registered model name")
            return str(path)
        registry_entry(weights)
        return weights

    # ------------------------------------------------------------ inference

    def process(self, volume, method: Optional[str] = None, weights: Optional[str] = None,
                t_fg: Optional[float] = None, t_bg: Optional[float] = None, device: Optional[str] = None,
                where: Where = Where.IN_PROCESS, progress=None, lesion_boxes: Optional[bool] = None) -> WeakSegNodes:
        """Run inference on ``volume`` and show the result; returns the created nodes.

        Arguments left at None come from the parameter node; given ones are stored
        there, so the panel shows what a script ran. ``where`` CHILD_PROCESS runs
        ``covidweak segment`` in a child process (``progress`` cancel kills it). Hu et al.'s
        lesion boxes come only with the ``lesion_boxes`` option, whatever the method.
        """
        params = self.parameters
        for name, value in (("method", method), ("weights", weights), ("t_fg", t_fg), ("t_bg", t_bg),
                            ("device", device), ("lesion_boxes", lesion_boxes)):
            if value is not None:
                setattr(params, name, value)
        check_module_device(params.device)
        image = self._checked_ct(volume)
        self.check_thresholds(params.t_fg, params.t_bg)
        weights_used = self.check_model(params.method, params.weights)
        params.input_volume = volume
        box_weights = self.box_weights() if params.lesion_boxes else None
        result = self.infer(image, params.method, weights_used, params.t_fg, params.t_bg, params.device,
                            where=where, progress=progress, box_weights=box_weights)
        created = self.show_result(volume, result)
        if box_weights is not None:
            created.lesion_boxes = self.show_boxes(volume, result.boxes)
        return created

    def box_weights(self, weights: Optional[str] = None) -> str:
        """The multi-scale CAM weights of the Hu et al. boxes: ``weights``, else the panel's when the
        method is mscam, else the shipped "mscam-light"."""
        params = self.parameters
        if weights is None:
            weights = params.weights if params.method == "mscam" else ""
        return self.check_model("mscam", weights)

    def infer(self, image, method: str, weights: str, t_fg: float, t_bg: float, device: str,
              where: Where = Where.IN_PROCESS, progress=None, box_weights: Optional[str] = None):
        """The :class:`SegmentResult` of one CT image (with Hu et al. boxes from ``box_weights`` when given)."""
        if where is Where.IN_PROCESS:
            from covidweak.models import load_weights
            from covidweak.weakseg.infer import segment_ct
            from covidweak.weakseg.saliency import lesion_boxes

            model = load_weights(weights, method=method, device="cpu")
            result = segment_ct(image, model, t_fg=t_fg, t_bg=t_bg, device=device, progress=progress)
            if box_weights is not None:
                boxer = load_weights(box_weights, method="mscam", device="cpu")
                result.boxes = lesion_boxes(image, boxer, result.lungs, device=device, progress=progress)
            return result
        import SimpleITK as sitk
        from covidweak.weakseg.outputs import read_outputs

        folder = Path(tempfile.mkdtemp(prefix="covidweak-segment-", dir=self.work_dir))
        try:
            ct_path, out_dir = folder / "ct.nrrd", folder / "out"
            sitk.WriteImage(image, str(ct_path))
            run_command(segment_command(ct_path, out_dir, method, weights, t_fg, t_bg, device, box_weights),
                        Where.CHILD_PROCESS, progress, self.work_dir)
            result = read_outputs(out_dir)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return results.on_ct_grid(result, image)

    # ------------------------------------------------------------ outputs

    def show_result(self, volume, result) -> WeakSegNodes:
        """Add the probability overlay, lesion table and summary table of ``result`` to the scene."""
        from covidweak.slicer.mrml import volume_node_from_image

        params, scene = self.parameters, self.scene
        base = volume.GetName()
        name = nodes.release_output(scene, params, "output_probability", f"{base} lesion probability")
        probability = nodes.record_output(params, "output_probability",
                                          volume_node_from_image(result.probability, scene=scene, name=name))
        display.style_probability_volume(probability, params.t_fg)
        display.show_overlay(scene, volume, probability, params.opacity)
        columns, rows = results.lesion_rows(result.lesions)
        name = nodes.release_output(scene, params, "output_lesion_table", f"{base} lesions")
        lesion_table = nodes.record_output(params, "output_lesion_table", nodes.new_table(scene, name, columns, rows))
        columns, rows = results.summary_rows(result.summary)
        name = nodes.release_output(scene, params, "output_summary_table", f"{base} involvement")
        summary_table = nodes.record_output(params, "output_summary_table", nodes.new_table(scene, name, columns, rows))
        self.last_result = result
        return WeakSegNodes(probability, lesion_table, summary_table)

    def set_thresholds(self, t_fg: Optional[float] = None, t_bg: Optional[float] = None) -> str:
        """Store T_fg/T_bg and move the overlay's display threshold (nothing is recomputed)."""
        params = self.parameters
        t_fg = params.t_fg if t_fg is None else float(t_fg)
        t_bg = params.t_bg if t_bg is None else float(t_bg)
        status = self.check_thresholds(t_fg, t_bg)
        params.t_fg, params.t_bg = t_fg, t_bg
        if params.output_probability is not None:
            display.set_display_threshold(params.output_probability, t_fg)
        return status

    def set_opacity(self, opacity: Optional[float] = None) -> str:
        params = self.parameters
        if opacity is not None:
            params.opacity = opacity
        if params.output_probability is not None:
            display.set_overlay_opacity(self.scene, params.output_probability, params.opacity)
        return f"overlay opacity {params.opacity:.2f}"

    def create_segmentation(self, uncertain: Optional[bool] = None):
        """A segmentation of the current overlay at T_fg ("Lesion"), plus T_bg..T_fg ("Uncertain") if asked."""
        import SimpleITK as sitk
        from covidweak.slicer.mrml import image_from_volume_node, segmentation_node_from_labels

        params = self.parameters
        if uncertain is not None:
            params.uncertain_segment = uncertain
        probability = params.output_probability
        if probability is None:
            raise InputError("no lesion probability yet: press Apply first")
        self.check_thresholds(params.t_fg, params.t_bg)
        image = image_from_volume_node(probability)
        labels = display.threshold_labels(sitk.GetArrayViewFromImage(image), params.t_fg, params.t_bg,
                                          params.uncertain_segment)
        label_image = sitk.GetImageFromArray(labels)
        label_image.CopyInformation(image)
        names = {1: display.LESION_SEGMENT}
        colors = {1: display.LESION_COLOR, 2: display.UNCERTAIN_COLOR}
        if params.uncertain_segment:
            names[2] = display.UNCERTAIN_SEGMENT
        reference = params.input_volume
        base = reference.GetName() if reference is not None else probability.GetName()
        name = nodes.release_output(self.scene, params, "output_lesion_segmentation", f"{base} lesions T_fg {params.t_fg:.2f}")
        # The labels live on the probability's grid: referencing that grid (not the CT's,
        # equal only up to float rounding of the stored geometry) keeps every voxel in place.
        node = segmentation_node_from_labels(label_image, names, colors, scene=self.scene, name=name,
                                             reference_volume=probability)
        display.tag_terminology(node)
        return nodes.record_output(params, "output_lesion_segmentation", node)

    def jump_to_lesion(self, row: int) -> tuple[float, float, float]:
        """RAS centroid of lesion ``row`` of the lesion table; centres every slice view there."""
        import slicer

        table = self.parameters.output_lesion_table
        if table is None:
            raise InputError("no lesion table yet: press Apply first")
        ras = results.centroid_of_row(table, row)
        slicer.vtkMRMLSliceNode.JumpAllSlices(self.scene, *ras, slicer.vtkMRMLSliceNode.CenteredJumpSlice)
        return ras

    def add_lesion_boxes(self, volume, lungs=None, weights: Optional[str] = None, progress=None) -> list:
        """Hu et al. lesion boxes of the multi-scale CAM network as ROI markups, highest saliency first,
        computed in this process (for scripts; the panel gets them from ``process``'s child).

        ``weights``: see :meth:`box_weights`. ``lungs``: labels on the CT grid (None segments them again).
        """
        from covidweak.models import load_weights
        from covidweak.weakseg.saliency import lesion_boxes

        image = self._checked_ct(volume)
        model = load_weights(self.box_weights(weights), method="mscam", device="cpu")
        return self.show_boxes(volume, lesion_boxes(image, model, lungs, device=self.parameters.device,
                                                    progress=progress))

    def show_boxes(self, volume, boxes: list) -> list:
        """ROI markups of ``boxes`` (:func:`covidweak.weakseg.saliency.lesion_boxes` rows), replacing earlier ones."""
        params = self.parameters
        nodes.release_boxes(self.scene, params)
        created = [nodes.add_roi(self.scene, f"{volume.GetName()} lesion box {i} ({box['score']:.2f})",
                                 box["centre"], box["size"]) for i, box in enumerate(boxes, start=1)]
        nodes.record_boxes(params, created)
        return created

    def summary_text(self, summary_table=None) -> str:
        """One line per region of the summary table: what the panel's summary label shows."""
        table = summary_table or self.parameters.output_summary_table
        return results.summary_text(table) if table is not None else ""

    # ------------------------------------------------------------ lungs only

    def segment_lungs(self, volume, progress=None):
        """Segment the lungs of ``volume`` into a NEW segmentation node ("Right lung", "Left lung").

        Existing nodes are never reused or overwritten; the new node is also
        remembered as the module's output. ``self.last_lung_volumes_ml`` holds
        the lung volumes for the status line.
        """
        from covidweak.lungs import segment_lungs
        from covidweak.slicer.mrml import segmentation_node_from_labels

        image = self._checked_ct(volume)
        labels = segment_lungs(image, progress=progress)
        volumes = lung_volumes_ml(labels)
        if not any(volumes.values()):
            raise InputError(f"no lung found in '{volume.GetName()}': check that it is a chest CT in Hounsfield units")
        node = segmentation_node_from_labels(
            labels, LUNG_NAMES, LUNG_COLORS, scene=self.scene,
            name=f"{volume.GetName()} lungs", reference_volume=volume,
        )
        self.last_lung_volumes_ml = volumes
        self.parameters.output_segmentation = node
        return node

    @staticmethod
    def lungs_status(node, volumes_ml: dict[str, float]) -> str:
        parts = ", ".join(f"{name} {ml:.0f} mL" for name, ml in volumes_ml.items())
        return f"Created '{node.GetName()}': {parts}"


def segment_command(ct_path, out_dir, method: str, weights: str, t_fg: float, t_bg: float, device: str,
                    box_weights: Optional[str] = None) -> list[str]:
    """The arguments of ``covidweak segment`` writing into ``out_dir`` (with Hu et al. boxes from
    ``box_weights`` when given)."""
    argv = ["segment", str(ct_path), "--out", str(out_dir), "--method", method, "--weights", weights,
            "--t-fg", repr(float(t_fg)), "--t-bg", repr(float(t_bg)), "--device", device]
    return argv + (["--lesion-boxes", "--box-weights", box_weights] if box_weights is not None else [])


def lung_volumes_ml(labels) -> dict[str, float]:
    """Volume of each lung label in millilitres (1 mL = 1000 mm^3)."""
    import numpy as np
    import SimpleITK as sitk

    counts = np.bincount(sitk.GetArrayViewFromImage(labels).ravel(), minlength=3)
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    return {name: float(counts[label]) * voxel_ml for label, name in LUNG_NAMES.items()}
