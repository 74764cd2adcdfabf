"""``covidweak evaluate fecnn``: Wu et al.'s three evaluations on held-out studies with ground truth.

* Diagnosis (Sect. 4.3.1): slice accuracy over the slices the training task uses (per class,
  and AP / ROC AUC of the COVID-19 probability in the binary task).
* Lesion detection (Sect. 4.3.2, Tables 5-6): hit rate of the LAM at overlap thresholds
  0.1-0.9, beside a plain CAM (Zhou et al.; the shipped ``cam-light`` CAM network, its map
  inside the lungs thresholded at 20% of its maximum). Both run on every lung slice that
  holds a ground-truth lesion, whatever FeCNN predicts for it, so the table measures
  localisation alone; the ground-truth lesions are the 4-connected components of the mask.
  The "perfect map" row is the ceiling of the LAM's geometry: the true lesion fraction of each
  cell of FeCNN's map grid, put through the same Otsu threshold, components and upsampling.
  The LAM and the perfect map are also scored over the lesions a reader would box, components
  of at least :data:`.hitrate.MIN_BOXED_MM2` (our reading; the paper's truth are boxes).
* Lesion identification (Sect. 4.3.3, Table 7): the lesions of the predicted COVID-19 slices
  (as the clustering command finds them) are clustered with k-means, K = the number of
  phantom lesion types unless given, and compared with the types by Hungarian matching.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..models.fecnn import CLASS_NAMES, COVID_CLASS
from ..progress import Progress
from .ct import DEFAULT_BATCH_SIZE, cell_fraction, detect_slices, lung_cells, region_split, to_slice
from .hitrate import MIN_BOXED_MM2, OVERLAP_THRESHOLDS, cam_regions, hit_rate_table, slice_hits, truth_components
from .lam import lesion_activation_map, lesion_components
from .library import PHANTOM_TYPES, fit_clusters, library_lesions
from .matching import confusion, type_table
from .store import type_name


def diagnosis_metrics(probabilities: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict:
    """Slice accuracy, per-class accuracy and (binary) AP / AUC: probabilities (N, C), labels (N,)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    predicted = probabilities.argmax(axis=1)
    out = {"slices": int(len(labels)), "accuracy": float((predicted == labels).mean()) if len(labels) else None,
           "per_class": {name: float((predicted[labels == c] == c).mean()) if (labels == c).any() else None
                         for c, name in enumerate(class_names)}}
    positive = labels == COVID_CLASS
    if len(class_names) == 2 and positive.any() and (~positive).any():
        out["average_precision"] = float(average_precision_score(positive, probabilities[:, COVID_CLASS]))
        out["roc_auc"] = float(roc_auc_score(positive, probabilities[:, COVID_CLASS]))
    return out


def classify(records: Sequence, loaded, device, batch_size: int, progress: Progress) -> dict:
    """Diagnosis metrics of ``loaded`` on the slices of ``records`` (classes as in training)."""
    import torch

    from .slices import study_slices

    classes = int(loaded.arch.get("classes", 2))
    probabilities, labels = [], []
    for done, record in enumerate(records):
        progress.update(done, len(records), f"diagnosis {record.study_id}")
        x, y = study_slices(record, loaded.preprocess, classes)
        for start in range(0, len(x), batch_size):
            with torch.no_grad():
                logits = loaded.model(torch.from_numpy(x[start:start + batch_size].astype(np.float32)).to(device)).logits
            probabilities.append(logits.float().softmax(dim=1).cpu().numpy())
        labels.append(y)
    stacked = np.concatenate(probabilities) if probabilities else np.zeros((0, classes))
    return diagnosis_metrics(stacked, np.concatenate(labels) if labels else np.zeros(0, int), CLASS_NAMES[classes])


def cam_maps(cam_loaded, hu: np.ndarray, lungs: np.ndarray, centres, spacing_yx: tuple[float, float], device) -> np.ndarray:
    """Plain CAM of slices ``centres``: the CAM network's lesion map, ReLU, on the slice grid -> (B, Y, X).

    hu, lungs: (Z, Y, X) canonical volume and its lung labels; spacing_yx: (dy, dx) mm, which
    places the lung box when the CAM network reads one. The map is not gated: Table 6 compares
    where each method looks on the lesion slices.
    """
    from ..weakseg.infer import slice_logits
    from ..weakseg.prepare import input_box, prepare_stacks

    box = input_box(cam_loaded.preprocess, lungs, spacing_yx)
    x = prepare_stacks(hu, centres, cam_loaded.preprocess, lungs, box)
    return np.maximum(slice_logits(cam_loaded.model, x, hu.shape[1:], device, box, gate=False), 0.0)


def perfect_map(truth: np.ndarray, lahm_shape: tuple[int, int], box, inside: Optional[np.ndarray] = None,
                split: Optional[Callable] = None) -> tuple[np.ndarray, np.ndarray]:
    """The ceiling map's detections on one slice: truth (Y, X) lesion mask -> (regions, LAM), (Y, X) each.

    The map is the lesion fraction of each cell of the (h, w) network grid (``box``: the lung
    box the network reads, or None for a resized whole slice), thresholded as the LAM is
    (``inside``: the lung cells for ``otsu_lungs``, see :func:`.ct.lung_cells`), and its regions
    split as the LAM's are (``split``: :func:`.ct.region_split`, or None).
    """
    fraction = cell_fraction(truth, lahm_shape, box)
    components = lesion_components(fraction, inside)
    regions = to_slice(components, truth.shape, box, order=0)
    if split is not None:
        regions = split(regions)[0]
    return regions, to_slice(lesion_activation_map(fraction, components, fraction.shape), truth.shape, box, order=1)


def hit_rates(records: Sequence, loaded, cam_loaded, device, batch_size: int, progress: Progress) -> dict:
    """Pooled hit counts of LAM, the perfect map and CAM over the lesion slices of ``records`` -> Table 5/6 rows."""
    from ..io import read_ct, read_image
    from ..lungs.geometry import to_canonical
    from ..weakseg.infer import batches, lung_labels_for
    from ..weakseg.prepare import input_box

    boxed = f"lesions ≥ {MIN_BOXED_MM2:g} mm²"
    names = ("LAM", "perfect map", "CAM", f"LAM, {boxed}", f"perfect map, {boxed}")
    counts = {name: np.zeros(len(OVERLAP_THRESHOLDS), dtype=np.int64) for name in names}
    lesions = {"all": 0, "boxed": 0}
    for done, record in enumerate(records):
        progress.update(done, len(records), f"hit rate {record.study_id}")
        ct = read_ct(record.ct_path)
        lungs = lung_labels_for(ct, read_image(record.lung_mask_path) if record.lung_mask_path else None)
        canonical = to_canonical(ct)
        hu = sitk.GetArrayFromImage(canonical)
        spacing_yx = canonical.GetSpacing()[1::-1]
        lung_array = sitk.GetArrayFromImage(to_canonical(lungs))
        truth = sitk.GetArrayFromImage(to_canonical(read_image(record.lesion_mask_path))) * (lung_array > 0)
        todo = np.flatnonzero(truth.reshape(len(truth), -1).any(axis=1))
        box = input_box(loaded.preprocess, lung_array, spacing_yx)
        min_pixels = int(np.ceil(MIN_BOXED_MM2 / float(np.prod(spacing_yx))))
        for centres in batches(todo, batch_size):
            found = detect_slices(loaded.model, loaded.preprocess, hu, lung_array, centres, box, device, spacing_yx)
            cams = cam_maps(cam_loaded, hu, lung_array, centres, spacing_yx, device) if cam_loaded is not None else None
            for b, z in enumerate(centres):
                inside = lung_cells(loaded.preprocess, lung_array[z], found[b].lahm_shape, box)
                ceiling = perfect_map(truth[z], found[b].lahm_shape, box, inside,
                                      region_split(loaded.preprocess, hu[z], lung_array[z], spacing_yx))
                every = truth_components(truth[z])
                for key, suffix, gt in (("all", "", every), ("boxed", f", {boxed}", truth_components(truth[z], min_pixels))):
                    hits, n = slice_hits(found[b].regions, found[b].lam, gt)
                    counts["LAM" + suffix] += hits
                    counts["perfect map" + suffix] += slice_hits(*ceiling, gt)[0]
                    lesions[key] += n
                if cams is not None:
                    cam = cams[b] * (lung_array[z] > 0)
                    counts["CAM"] += slice_hits(cam_regions(cam), cam, every)[0]
    shown = [name for name in names if name != "CAM" or cam_loaded is not None]
    return {name: hit_rate_table(counts[name], lesions["boxed" if boxed in name else "all"]) for name in shown}


def identification(records: Sequence, loaded, k, seed: int, device, batch_size: int, progress: Progress) -> dict:
    """Table 7 on the lesions of the predicted COVID-19 slices of ``records``."""
    studies = library_lesions(records, loaded, device, batch_size, progress)
    with_lesions = [(sid, found) for sid, found in studies if found.rows]
    count = sum(len(found.rows) for _, found in with_lesions)
    if count < 2:
        return {"lesions": count, "table": None,
                "note": "fewer than 2 lesions on the predicted COVID-19 slices: nothing to cluster"}
    model, rows = fit_clusters(with_lesions, PHANTOM_TYPES if k is None else k, seed)
    types = np.array([next((t for t in range(1, PHANTOM_TYPES + 1) if type_name(t) == row["type"]), 0) for row in rows])
    clusters = np.array([row["cluster"] for row in rows])
    known = types > 0
    k_used = int(model.centres.shape[0])
    table = confusion(types[known], clusters[known], PHANTOM_TYPES, k_used)
    return {"k": k_used, "k_selection": model.info["k_selection"], "lesions": len(rows),
            "lesions_with_type": int(known.sum()), "confusion": table.tolist(),
            "table": type_table(table, [type_name(t) for t in range(1, PHANTOM_TYPES + 1)])}


def evaluate_fecnn(records: Sequence, loaded, cam_loaded=None, k=None, seed: int = 0, device="cpu",
                   batch_size: int = DEFAULT_BATCH_SIZE, progress: Optional[Progress] = None) -> dict:
    """The report's three sections for studies with lesion masks (see the module docstring)."""
    if not records:
        raise InputError("no studies to evaluate: the dataset or its test split is empty; try --split all")
    progress = progress or Progress()
    loaded.model.to(device).eval()
    if cam_loaded is not None:
        cam_loaded.model.to(device).eval()
    return {"diagnosis": classify(records, loaded, device, batch_size, progress),
            "hit_rate": hit_rates(records, loaded, cam_loaded, device, batch_size, progress),
            "identification": identification(records, loaded, k, seed, device, batch_size, progress)}


def markdown(report: dict) -> str:
    """Tables 5-7 of a report as Markdown."""
    accuracy = report["diagnosis"]["accuracy"]
    lines = [f"Diagnosis: slice accuracy {'-' if accuracy is None else f'{accuracy:.3f}'} "
             f"({report['diagnosis']['slices']} slices)", "",
             "| threshold | " + " | ".join(report["hit_rate"]) + " |", "|---" * (1 + len(report["hit_rate"])) + "|"]
    methods = list(report["hit_rate"])
    for i, row in enumerate(report["hit_rate"][methods[0]]):
        cells = [report["hit_rate"][m][i]["hit_rate"] for m in methods]
        lines.append(f"| {row['threshold']:.1f} | " + " | ".join("-" if c is None else f"{100 * c:.1f}%" for c in cells) + " |")
    table = report["identification"].get("table")
    if table:
        lines += ["", "| truth \\ matched cluster | " + " | ".join(table["types"]) + " | sensitivity | specificity | precision |",
                  "|---" * (4 + len(table["types"])) + "|"]
        for row in table["rows"]:
            cells = [f"{100 * row[m]:.1f}%" if row[m] is not None else "-" for m in ("sensitivity", "specificity", "precision")]
            lines.append(f"| {row['type']} | " + " | ".join(str(c) for c in row["counts"]) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)
