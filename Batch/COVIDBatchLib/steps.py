"""What the batch runs on each case: one step per Slicer module, each driving that module's Logic.

A step is a function ``step(context)`` that runs a module's Logic on the
case's scene and records, in the :class:`CaseContext`, the nodes it saved, the
figures for summary.csv, its report section and the models it used. Steps run
in the order of ``--steps``; a later step sees the earlier ones' outputs
(``context.outputs``), so e.g. a CT severity step can reuse the lesion
segmentation instead of computing it again.

Steps: COVIDWeakSeg (lesions), then COVIDSeverity (the 6-zone CT score,
computed from COVIDWeakSeg's segmentation rather than a second one), and
COVIDSimilarCase (the most similar cases of a case index) when an index is
given. The diagnosis part of COVIDSeverity (``covidweak diagnose``) is left
out: no diagnosis weights are shipped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image

from covidweak.errors import InputError
from covidweak.report.html import Picture, Section, Table
from .cases import Case

LESION_REPORT_COLUMNS = ("id", "volume_ml", "lung", "zone", "mean_hu", "max_probability",
                         "centroid_r", "centroid_a", "centroid_s")
"""The lesion table's columns a reader needs; the full table is in lesions.tsv."""


@dataclass(frozen=True)
class BatchOptions:
    """Settings shared by every case of a batch (recorded in batch.json so that a rerun keeps them)."""

    method: str = "mseamnam"
    weights: str = ""  # a registry name or weight file; empty = "<method>-light"
    t_fg: Optional[float] = None  # None = the module's default
    t_bg: Optional[float] = None
    device: str = "auto"
    lesion_boxes: bool = False
    steps: tuple = ("COVIDWeakSeg", "COVIDSeverity")  # see DEFAULT_STEPS
    similar_index: Optional[str] = None  # a `covidweak index build` folder: adds the COVIDSimilarCase step
    similar_k: int = 5
    ducn_weights: str = ""  # DuCN weights of that index; empty = the command's default
    diagnosis_weights: str = ""  # COVID-19 / CAP / normal classifier; empty = the command's default
    pdf: bool = False
    dicom_seg: bool = True  # for DICOM inputs: also write the lesions as a DICOM SEG


@dataclass
class CaseContext:
    """One case while its steps run: its scene and CT, where files go, and what the steps produced."""

    case: Case
    scene: object
    volume: object  # the CT's vtkMRMLScalarVolumeNode
    image: object  # the CT as a SimpleITK image (HU, float32)
    folder: Path
    options: BatchOptions
    outputs: dict = field(default_factory=dict)  # key -> file name inside ``folder``
    figures: dict = field(default_factory=dict)  # summary.csv column -> value
    sections: list = field(default_factory=list)  # report Sections
    models: list = field(default_factory=list)  # {"step", "method", "name", "sha256"}
    handoff: dict = field(default_factory=dict)  # what a step leaves for later ones, e.g. "segment_result"

    def save(self, node, key: str, file_name: str) -> None:
        from .scene_files import save_node

        save_node(node, self.folder / file_name)
        self.outputs[key] = file_name

    def picture(self, key: str, file_name: str, rgb: np.ndarray, title: str, caption: str = "") -> Picture:
        Image.fromarray(rgb).save(self.folder / file_name)
        self.outputs[key] = file_name
        return Picture(title, file_name, caption)


@functools.lru_cache(maxsize=None)
def loaded_model(weights: str, method: str, device: str):
    """The network of ``weights``, loaded once per process and reused for every case."""
    from covidweak.device import resolve_device
    from covidweak.models import load_weights

    return load_weights(weights, method=method, device=str(resolve_device(device)))


@functools.lru_cache(maxsize=None)
def batch_weakseg_logic_class(logic_class: type) -> type:
    """COVIDWeakSeg's Logic with :func:`loaded_model` in place of a load per call.

    The module's ``infer`` loads the weights on every call, right for a panel
    that runs one CT; a batch of hundreds loads them once (and once per GPU).
    """

    class BatchWeakSegLogic(logic_class):
        # A batch runs everything in its own process, whatever ``where`` says.
        def infer(self, image, method, weights, t_fg, t_bg, device, where=None, progress=None, box_weights=None):
            from covidweak.weakseg.infer import segment_ct
            from covidweak.weakseg.saliency import lesion_boxes

            result = segment_ct(image, loaded_model(weights, method, device), t_fg=t_fg, t_bg=t_bg, device=device,
                                progress=progress)
            if box_weights is not None:
                result.boxes = lesion_boxes(image, loaded_model(box_weights, "mscam", device), result.lungs,
                                            device=device, progress=progress)
            return result

    return BatchWeakSegLogic


def weakseg_step(context: CaseContext) -> None:
    """COVIDWeakSeg: lesion probability, lesion segmentation at T_fg, lesion and involvement tables, boxes."""
    from covidweak.dicom_seg import write_dicom_seg
    from covidweak.report.figures import coronal_zones, lightbox

    from COVIDWeakSegLib import COVIDWeakSegLogic, results

    options = context.options
    logic = batch_weakseg_logic_class(COVIDWeakSegLogic)(context.scene)
    created = logic.process(context.volume, method=options.method, weights=options.weights, t_fg=options.t_fg,
                            t_bg=options.t_bg, device=options.device, lesion_boxes=options.lesion_boxes)
    segmentation = logic.create_segmentation()
    result, summary = logic.last_result, logic.last_result.summary
    context.save(created.probability, "lesion_probability", "lesion_probability.nii.gz")
    context.save(segmentation, "lesion_segmentation", "lesion_segmentation.seg.nrrd")
    context.save(created.lesion_table, "lesion_table", "lesions.tsv")
    context.save(created.summary_table, "involvement_table", "involvement.tsv")
    for number, box in enumerate(created.lesion_boxes, start=1):
        context.save(box, f"lesion_box_{number}", f"lesion_box_{number}.json")
    if context.case.dicom and options.dicom_seg:
        write_dicom_seg(result.mask, context.case.path, context.folder / "lesion_seg.dcm", algorithm=summary["method"])
        context.outputs["dicom_seg"] = "lesion_seg.dcm"

    involvement = summary["involvement"]
    context.figures.update(
        lesion_count=summary["lesion_count"], lesion_volume_ml=summary["lesion_volume_ml"],
        lung_volume_ml=summary["lung_volume_ml"]["total"], involvement_percent=involvement["total"]["percent"],
        right_percent=involvement["right"]["percent"], left_percent=involvement["left"]["percent"])
    t_fg = logic.parameters.t_fg
    pictures = [
        context.picture("lightbox", "lightbox.png", lightbox(context.image, result.mask, result.lungs),
                        "Axial slices", f"Lesion probability above T_fg = {t_fg:g} in red; lungs outlined. "
                        "Patient's right on the left of each tile."),
        context.picture("coronal_zones", "coronal_zones.png", coronal_zones(context.image, result.mask, result.lungs),
                        "Coronal view with lung zones", "Yellow lines: upper / middle / lower zone limits of each "
                        "lung, at 5/12 and 2/3 of its height (Kim et al. Sect. 2.2)."),
    ]
    columns, rows = results.summary_rows(summary)
    lesion_columns, lesion_rows = results.lesion_rows(result.lesions)
    keep = [lesion_columns.index(c) for c in LESION_REPORT_COLUMNS]
    tables = [Table("Involvement per lung and zone", columns, rows),
              Table(f"Lesions ({len(lesion_rows)})", LESION_REPORT_COLUMNS,
                    [[row[i] for i in keep] for row in lesion_rows])]
    text = (f"{summary['lesion_count']} lesions, {summary['lesion_volume_ml']:.1f} mL, "
            f"{involvement['total']['percent']:.1f}% of {summary['lung_volume_ml']['total']:.0f} mL lung "
            f"({summary['method']}, T_fg {t_fg:g}).")
    context.sections.append(Section("Lesions (COVIDWeakSeg)", pictures, tables, text))
    context.models.append({"step": "COVIDWeakSeg", "method": summary["method"], "name": summary["weights"],
                           "sha256": summary["weights_sha256"]})
    context.handoff["segment_result"] = result


def severity_step(context: CaseContext) -> None:
    """COVIDSeverity on a CT: the 6-zone involvement score (0-30) of COVIDWeakSeg's lesion segmentation,
    and the COVID-19 / CAP / normal diagnosis (``covidweak diagnose`` on the same lungs).

    The module's ``process`` would segment the CT again, with its own default
    weights and T_fg; here ``covidweak severity --from-segment`` reads the
    segmentation the COVIDWeakSeg step made, and the module's Logic turns its
    output folder into nodes (``load_outputs``), so both sections of the
    report describe the same lesions.
    """
    import contextlib
    import io
    import shutil
    import tempfile

    from covidweak.slicer.runner import Where, run_command
    from covidweak.weakseg.outputs import write_outputs

    result = context.handoff.get("segment_result")
    if result is None:
        raise InputError("the COVIDSeverity step scores COVIDWeakSeg's lesions: list COVIDWeakSeg before it in --steps")
    from COVIDSeverityLib import logic as severity_logic

    logic = severity_logic.COVIDSeverityLogic(context.scene)
    logic.parameters.device = context.options.device
    logic.parameters.seg_method = context.options.method
    work = Path(tempfile.mkdtemp(prefix=".severity-", dir=context.folder))
    try:
        write_outputs(result, work / "segment")
        argv = severity_logic.severity_command(context.case.path, work / "severity", logic.parameters)
        diagnose = ["diagnose", context.case.path, "--out", work / "diagnosis", "--lungs", work / "segment" / "lungs.nii.gz",
                    "--device", context.options.device]
        if context.options.diagnosis_weights:
            diagnose += ["--weights", context.options.diagnosis_weights]
        with contextlib.redirect_stdout(io.StringIO()):  # the commands' one-line summaries; the batch prints its own
            run_command(argv + ["--from-segment", work / "segment", "--t-fg", repr(float(result.t_fg))], Where.IN_PROCESS)
            run_command(diagnose, Where.IN_PROCESS)
        created = logic.load_outputs(context.volume, work / "severity", work / "diagnosis")
        for name in ("severity/ct_severity.json", "diagnosis/diagnosis.json"):
            shutil.copyfile(work / name, context.folder / Path(name).name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    context.outputs["ct_severity"] = "ct_severity.json"
    context.outputs["diagnosis"] = "diagnosis.json"
    context.save(created.zone_table, "severity_zone_table", "severity_zones.tsv")
    context.save(created.zone_segmentation, "severity_zone_segmentation", "severity_zones.seg.nrrd")
    context.save(created.diagnosis_table, "diagnosis_table", "diagnosis.tsv")
    context.save(created.slice_table, "diagnosis_slice_table", "diagnosis_slices.tsv")
    report = logic.last_report
    diagnosis = report["diagnosis"]
    context.figures["ct_severity_score"] = created.score
    context.figures["diagnosis"] = diagnosis["prediction"]
    context.figures["diagnosis_probability"] = round(float(diagnosis["probabilities"][diagnosis["prediction"]]), 4)
    context.models.append({"step": "COVIDSeverity", "method": "diagnosis", "name": diagnosis["model"]["name"],
                           "sha256": diagnosis["model"]["sha256"]})
    table = Table("Zone involvement and score (0-5 per zone)", severity_logic.CT_ZONE_COLUMNS,
                  severity_logic.ct_zone_rows(report))
    classes = Table("Diagnosis probability (per patient)", ("class", "probability"),
                    [[name, float(diagnosis["probabilities"][name])] for name in diagnosis["classes"]], digits=3)
    context.sections.append(Section("CT severity and diagnosis (COVIDSeverity)", tables=[table, classes],
                                    text=f"{logic.summary_text()}. {report['score_name']}; computed from the "
                                         f"lesion segmentation above. Diagnosis: {diagnosis['aggregation']}"))


def similar_step(context: CaseContext) -> None:
    """COVIDSimilarCase: the ``similar_k`` studies of ``similar_index`` closest to this CT (DuCN embedding)."""
    import contextlib
    import io

    from covidweak.slicer.outputs import table_node_rows
    from covidweak.models.weights import registry_entry, sha256_of

    options = context.options
    if not options.similar_index:
        raise InputError("the COVIDSimilarCase step needs a case index: pass --similar-index INDEX "
                         "(build one with `covidweak index build`)")
    from COVIDSimilarCaseLib import COVIDSimilarCaseLogic

    logic = COVIDSimilarCaseLogic(context.scene)
    logic.parameters.device = options.device
    logic.parameters.ducn_weights = options.ducn_weights
    with contextlib.redirect_stdout(io.StringIO()):  # the command's own summary line
        table = logic.search(context.volume, index_dir=options.similar_index, k=options.similar_k)
    context.save(table, "similar_table", "similar_cases.tsv")
    columns, rows = table_node_rows(table)
    if rows:
        context.figures["similar_top_study"] = rows[0][columns.index("study_id")]
        context.figures["similar_top_diagnosis"] = rows[0][columns.index("diagnosis")]
    context.sections.append(Section("Similar cases (COVIDSimilarCase)", tables=[Table(
        f"The {len(rows)} closest studies of the index {options.similar_index}", columns, rows, digits=4)]))
    weights = options.ducn_weights or "ducn-light"
    path = Path(weights)
    digest = sha256_of(path) if path.is_file() else registry_entry(weights).get("sha256", "")
    context.models.append({"step": "COVIDSimilarCase", "method": "ducn", "name": path.stem, "sha256": digest})


STEPS: dict[str, Callable[[CaseContext], None]] = {
    "COVIDWeakSeg": weakseg_step,
    "COVIDSeverity": severity_step,
    "COVIDSimilarCase": similar_step,
}
"""Module name -> its step, in the order a batch runs them."""
DEFAULT_STEPS = ("COVIDWeakSeg", "COVIDSeverity")
"""Without a case index; ``--similar-index`` adds COVIDSimilarCase."""


def check_steps(names) -> tuple:
    unknown = [name for name in names if name not in STEPS]
    if unknown:
        raise InputError(f"unknown step(s) {', '.join(unknown)}: choose from {', '.join(STEPS)}")
    return tuple(names)
