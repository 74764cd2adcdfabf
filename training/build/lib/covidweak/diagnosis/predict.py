"""A chest CT -> per-slice and per-patient class probabilities, and the files of ``covidweak diagnose``.

Every axial slice that contains lung is prepared exactly as in training (the ``preprocess`` dict
stored with the weights, :func:`covidweak.weakseg.prepare.prepare_stacks`, canonical LPS axes: the
shared 1.4 mm lung box for a network trained on it, else the whole slice resized),
classified by the softmax of the summed multi-scale scores, and the patient probability is
aggregated from these (:mod:`.aggregate`). Slice numbers in the output are voxel indices k along
the CT file's third axis.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..progress import Progress
from .aggregate import describe, patient_probability

DEFAULT_BATCH_SIZE = 16
OUTPUT_FILES = {"json": "diagnosis.json", "slices": "slices.csv"}


@dataclass
class DiagnosisResult:
    """classes: K names; slices: (N,) file slice indices k; slice_probs: (N, K); probability: (K,)."""

    classes: tuple[str, ...]
    slices: np.ndarray
    slice_probs: np.ndarray
    probability: np.ndarray
    aggregation: str
    runtime_s: float

    @property
    def prediction(self) -> str:
        return self.classes[int(np.argmax(self.probability))]


def slice_probabilities(model, stacks: np.ndarray, device, batch_size: int = DEFAULT_BATCH_SIZE,
                        progress: Optional[Progress] = None) -> np.ndarray:
    """Softmax class probabilities of prepared stacks.

    model: a :class:`~covidweak.models.mscam.MultiScaleCAM`; stacks: (N, depth, S, S) float.
    Returns (N, K) float32.
    """
    import torch

    from ..weakseg.infer import autocast_for

    progress = progress or Progress()
    out = []
    for start in range(0, len(stacks), batch_size):
        progress.update(start, len(stacks), "classify slices")
        x = torch.from_numpy(np.ascontiguousarray(stacks[start:start + batch_size], dtype=np.float32)).to(device)
        with torch.inference_mode(), autocast_for(device):
            score = model(x).score
        out.append(torch.softmax(score.float(), dim=1).cpu().numpy())
    progress.update(len(stacks), len(stacks), "classify slices")
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def file_slice_index(ct: sitk.Image) -> np.ndarray:
    """(Z,) file slice index k of each canonical slice (InputError when the third axis is not axial)."""
    from ..lungs.geometry import canonical_slice_order

    try:
        return canonical_slice_order(ct)
    except ValueError:
        raise InputError("the CT's third axis is not axial: per-slice diagnosis needs axial slices; "
                         "reformat the series to axial slices first") from None


def diagnose_ct(ct: sitk.Image, model, lungs: Optional[sitk.Image] = None, device: str = "auto",
                batch_size: int = DEFAULT_BATCH_SIZE, progress: Optional[Progress] = None) -> DiagnosisResult:
    """Diagnose one chest CT.

    ct: 3-D CT in HU; model: a :class:`~covidweak.models.weights.LoadedModel` of method "diagnosis";
    lungs: labels on the CT grid or None to segment them. Raises InputError for a 2-D image,
    a non-CT, or a CT without lungs.
    """
    from ..device import resolve_device
    from ..validate import check_ct
    from ..lungs.geometry import to_canonical
    from ..weakseg.infer import lung_labels_for, lung_slices
    from ..weakseg.prepare import input_box, prepare_stacks

    if ct.GetDimension() != 3:
        raise InputError(f"diagnose needs a 3-D chest CT, got a {ct.GetDimension()}-D image "
                         f"(a radiograph or a single slice?): give the whole CT volume")
    check_ct(ct)
    start = time.perf_counter()
    torch_device = resolve_device(device)
    lungs = lung_labels_for(ct, lungs, progress)
    # Array views die with their image: keep the canonical images alive while the views are used.
    ct_canonical, lungs_canonical = to_canonical(ct), to_canonical(lungs)
    hu, lung_array = sitk.GetArrayViewFromImage(ct_canonical), sitk.GetArrayViewFromImage(lungs_canonical)
    todo = lung_slices(lung_array)
    model.model.to(torch_device).eval()
    spacing_x, spacing_y = ct_canonical.GetSpacing()[:2]
    box = input_box(model.preprocess, lung_array, (spacing_y, spacing_x))
    stacks = prepare_stacks(hu, todo, model.preprocess, lung_array, box)
    probs = slice_probabilities(model.model, stacks, torch_device, batch_size, progress)
    classes = tuple(model.arch["classes"])
    top_k = int(model.arch["top_k"])
    order = file_slice_index(ct)[todo]
    by_file = np.argsort(order, kind="stable")
    return DiagnosisResult(classes=classes, slices=order[by_file], slice_probs=probs[by_file],
                           probability=patient_probability(probs, classes, top_k), aggregation=describe(classes, top_k),
                           runtime_s=time.perf_counter() - start)


def check_writable(out_dir: Path, overwrite: bool = False) -> dict[str, Path]:
    """The output paths, or InputError when one exists and ``overwrite`` is false (call before working)."""
    from ..weakseg.outputs import check_writable as check_folder

    return check_folder(out_dir, overwrite, OUTPUT_FILES)


def diagnosis_json(result: DiagnosisResult, model, runtime_s: float) -> dict:
    """The content of diagnosis.json."""
    name = model.path.stem if model.path else ""
    return {"classes": list(result.classes),
            "probabilities": {c: float(p) for c, p in zip(result.classes, result.probability)},
            "prediction": result.prediction, "aggregation": result.aggregation, "slices_used": int(len(result.slices)),
            "model": {"name": name, "sha256": model.sha256}, "runtime_s": round(runtime_s, 3)}


def slices_csv_text(result: DiagnosisResult) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["slice"] + [f"p_{c}" for c in result.classes])
    for k, row in zip(result.slices, result.slice_probs):
        writer.writerow([int(k)] + [f"{float(p):.6f}" for p in row])
    return stream.getvalue()


def write_outputs(result: DiagnosisResult, model, out_dir: Path, runtime_s: float, overwrite: bool = False) -> dict[str, Path]:
    """Write diagnosis.json and slices.csv atomically into ``out_dir`` (created)."""
    from ..io.atomic import write_text

    paths = check_writable(out_dir, overwrite)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_text(paths["slices"], slices_csv_text(result))
    write_text(paths["json"], json.dumps(diagnosis_json(result, model, runtime_s), indent=2) + "\n")
    return paths
