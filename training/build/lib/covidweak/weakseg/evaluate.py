"""Table 1 of M-SEAM-NAM (Tang et al., MICCAI 2021) on held-out patients, plus the Fig. 3 T_fg sweep.

Metrics are per patient: the voxels of all a patient's studies are pooled, then
* positive patients (any ground-truth lesion voxel): Dice, lesion-pixel recall and precision;
* negative patients: Dice 1 if nothing is segmented, else 0 (Table 1's caption);
* all patients: the mean of both kinds of per-patient Dice.
A positive patient with nothing segmented has precision 0 (it found none of its lesion),
so means never skip a patient. Each study is run once; every threshold of the sweep is
applied to the same probability map, counting true/false positives and false negatives.
At each threshold of the sweep the map is also read with every minimum lesion size of
:data:`covidweak.weakseg.calibration.MIN_LESION_SWEEP_ML`, and the report gives that size sweep
at the threshold it chooses (the size gate's choice, :func:`calibration.chosen_min_lesion_ml`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..progress import Progress
from .infer import DEFAULT_BATCH_SIZE, T_BG, T_FG, segment_ct

SWEEP_T_FG = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
"""M-SEAM-NAM Fig. 3: T_fg from 0.1 to 0.8 (0.9 leaves no foreground early in training)."""
TABLE_GROUPS = (("positive", ("dice", "recall", "precision")), ("negative", ("dice",)), ("all", ("dice",)))


def confusion_counts(probability: np.ndarray, truth: np.ndarray, thresholds: Sequence[float],
                     sizes_ml: Sequence[float] = (0.0,), voxel_ml: float = 1.0) -> np.ndarray:
    """(len(thresholds), len(sizes_ml), 3) int64 counts (tp, fp, fn) against ``truth`` != 0 of
    ``probability > t`` with each 6-connected region under the size (mL) removed, as
    :func:`calibration.size_gate` removes it (size 0 keeps everything).

    probability, truth: same-shape arrays (any dimension); voxel_ml: the volume of one voxel in
    mL. One labelling per threshold: each region's voxel and lesion-voxel counts serve every size.
    """
    from scipy import ndimage as ndi

    truth = np.asarray(truth) != 0
    total = int(np.count_nonzero(truth))
    out = np.zeros((len(thresholds), len(sizes_ml), 3), dtype=np.int64)
    for row, t in enumerate(thresholds):
        labels, count = ndi.label(probability > t)
        voxels = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        hits = np.bincount(labels[truth], minlength=count + 1)[1:]
        for column, size in enumerate(sizes_ml):
            kept = voxels * voxel_ml >= size
            tp = int(hits[kept].sum())
            out[row, column] = (tp, int(voxels[kept].sum()) - tp, total - tp)
    return out


def lesion_truth(mask: sitk.Image) -> np.ndarray:
    """(Z, Y, X) bool lesion voxels of a label image, in an array the caller owns.

    A copy, not ``GetArrayViewFromImage``: a view does not keep its image alive, so a view of
    an image read inline is left pointing at freed memory, and a negative patient can read
    as positive (this happened in the first evaluations).
    """
    return sitk.GetArrayFromImage(mask) != 0


def patient_metrics(tp: int, fp: int, fn: int) -> dict:
    """Table 1 metrics of one patient from pooled voxel counts (see the module docstring)."""
    if tp + fn == 0:
        return {"positive": False, "dice": 1.0 if fp == 0 else 0.0}
    return {"positive": True, "dice": 2.0 * tp / (2 * tp + fp + fn), "recall": tp / (tp + fn),
            "precision": tp / (tp + fp) if tp + fp else 0.0}


def table(patients: Sequence[dict]) -> dict:
    """Mean and standard deviation of each Table 1 column over per-patient metric dicts."""
    groups = {"positive": [p for p in patients if p["positive"]], "negative": [p for p in patients if not p["positive"]],
              "all": list(patients)}
    out = {}
    for group, columns in TABLE_GROUPS:
        members = groups[group]
        out[group] = {"patients": len(members)}
        for column in columns:
            values = np.array([p[column] for p in members], dtype=float)
            out[group][column] = {"mean": float(values.mean()) if values.size else None,
                                  "std": float(values.std()) if values.size else None}
    return out


def read_validation_report(path: Path) -> dict:
    """The JSON report of ``covidweak evaluate weakseg`` at ``path``, or one InputError line."""
    import json

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the validation report {path} ({error}); pass the JSON that "
                         "`covidweak evaluate weakseg --split val` wrote") from None


def best_sweep_row(rows: Sequence[dict]) -> dict:
    """The sweep row with the best mean Dice over all patients; ties go to the lower threshold."""
    return max(rows, key=lambda row: (row["all"]["dice"]["mean"] or 0.0, -row["t_fg"]))


def chosen_t_fg(report: dict, method: str) -> float:
    """The threshold of ``method``'s sweep in a validation report with the best mean Dice over all patients.

    Mean over positive and negative patients (Table 1's "all" column), so a threshold that
    finds more lesion by marking normal patients is not preferred. Ties go to the lower threshold.
    Raises InputError when the report has no sweep for ``method``.
    """
    entries = [e for e in report.get("methods", {}).values() if e.get("method") == method]
    if not entries or not entries[0].get("sweep"):
        raise InputError(f"the validation report has no T_fg sweep for {method}: run `covidweak evaluate weakseg "
                         f"--split val --methods {method} ...` first")
    if entries[0].get("split") == "test":
        raise InputError("the report scores test patients: choose T_fg on validation patients (--split val)")
    return best_sweep_row(entries[0]["sweep"])["t_fg"]


def select_records(records: list, split: str, info: dict) -> tuple[list, dict]:
    """The studies to evaluate and how they were chosen.

    ``split="test"`` (or ``"val"``) re-creates the training run's patient split from the seed
    (and fractions) recorded in the weights' info. For "test" without a recorded seed every
    study is used and the report says so, since a test split of unknown seed could overlap the
    training patients. "val" is where a threshold is chosen, so without a seed it is refused
    rather than replaced by every patient.
    """
    from ..datasets import split_by_patient
    from ..datasets.splits import DEFAULT_FRACTIONS

    seed = info.get("seed")
    if split == "val" and seed is None:
        raise InputError("these weights record no training split, so their validation patients are unknown: "
                         "re-export the run with this version of covidweak export, or choose T_fg with --split all "
                         "on a separate validation cohort")
    if split == "all" or seed is None:
        reason = "requested" if split == "all" else "the weights record no split seed"
        return records, {"split": "all", "reason": reason, "studies": len(records)}
    fractions = info.get("fractions") or DEFAULT_FRACTIONS
    chosen = split_by_patient(records, fractions, seed=int(seed))[split]
    return chosen, {"split": split, "seed": int(seed), "fractions": list(fractions), "studies": len(chosen)}


def evaluate_model(records: list, model, t_fg: float = T_FG, t_bg: float = T_BG, device: str = "auto",
                   batch_size: int = DEFAULT_BATCH_SIZE, progress: Optional[Progress] = None,
                   sweep: Sequence[float] = SWEEP_T_FG) -> dict:
    """Per-patient metrics at ``t_fg`` and at each threshold of ``sweep`` of one model on ``records``.

    Lungs come from each record's lung mask when it has one, else from the classical segmentation.
    """
    from ..io import read_ct, read_image
    from .calibration import MIN_LESION_SWEEP_ML

    thresholds = sorted(set(sweep) | {t_fg})
    counts: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((len(thresholds), len(MIN_LESION_SWEEP_ML), 3),
                                                                 dtype=np.int64))
    diagnoses: dict[str, str] = {}
    progress = progress or Progress()
    for done, record in enumerate(records):
        progress.update(done, len(records), f"evaluate {model.method}")
        ct = read_ct(record.ct_path)
        lungs = read_image(record.lung_mask_path) if record.lung_mask_path else None
        result = segment_ct(ct, model, lungs=lungs, t_fg=t_fg, t_bg=t_bg, batch_size=batch_size, device=device)
        truth = lesion_truth(read_image(record.lesion_mask_path))
        voxel_ml = float(np.prod(result.probability.GetSpacing())) / 1000.0
        counts[record.patient_id] += confusion_counts(sitk.GetArrayViewFromImage(result.probability), truth, thresholds,
                                                      MIN_LESION_SWEEP_ML, voxel_ml)
        diagnoses.setdefault(record.patient_id, record.diagnosis)
    progress.update(len(records), len(records), f"evaluate {model.method}")
    at = {t: [dict(patient_metrics(*counts[p][i, 0]), patient_id=p, diagnosis=diagnoses[p]) for p in sorted(counts)]
          for i, t in enumerate(thresholds)}
    rows = [{"t_fg": t, **table(at[t])} for t in sweep]
    # The size sweep at the threshold this report chooses: the one an exported offset moves to T_fg.
    chosen = best_sweep_row(rows)["t_fg"] if rows else None
    k = thresholds.index(chosen) if rows else None
    sizes = [] if k is None else [{"min_lesion_ml": size, **table([patient_metrics(*counts[p][k, j]) for p in sorted(counts)])}
                                  for j, size in enumerate(MIN_LESION_SWEEP_ML)]
    return {"t_fg": t_fg, "t_bg": t_bg, "table": table(at[t_fg]), "patients": at[t_fg], "sweep": rows,
            "size_sweep": {"t_fg": chosen, "rows": sizes}}


def evaluate_methods(data: Path, methods: Sequence[str], weights: Optional[Sequence[str]] = None, split: str = "test",
                     t_fg: float = T_FG, t_bg: float = T_BG, device: str = "auto",
                     batch_size: int = DEFAULT_BATCH_SIZE, progress: Optional[Progress] = None,
                     sweep: Sequence[float] = SWEEP_T_FG) -> dict:
    """The report of ``covidweak evaluate weakseg``: one entry per method, keyed by :func:`row_names`.

    Studies need a ground-truth lesion mask (the phantom and COVID-19-CT-Seg have them).
    """
    from .. import __version__
    from ..datasets import open_dataset
    from ..models import load_weights
    from .calibration import settings_of

    if weights is not None and len(weights) != len(methods):
        raise InputError(f"{len(weights)} --weights for {len(methods)} --methods: give one per method, in order")
    records = [r for r in open_dataset(Path(data)) if r.lesion_mask_path is not None]
    if not records:
        raise InputError(f"{data} has no studies with a lesion mask: evaluation needs ground truth (try a phantom)")
    report = {"data": str(data), "covidweak_version": __version__, "methods": {},
              "note": "research use only; Table 1 layout of Tang et al. (MICCAI 2021)"}
    sources = list(weights) if weights else [f"{method}-light" for method in methods]
    for method, source, name in zip(methods, sources, row_names(methods, sources)):
        model = load_weights(source, method=method)
        chosen, selection = select_records(records, split, model.info)
        entry = evaluate_model(chosen, model, t_fg, t_bg, device, batch_size, progress, sweep)
        # The map's inference settings (covidweak.weakseg.calibration), which the chosen T_fg depends on.
        settings = settings_of(model.preprocess)
        report["methods"][name] = {"method": method, "weights": str(model.path), "weights_sha256": model.sha256,
                                   **settings, **selection, **entry}
    return report


def row_names(methods: Sequence[str], sources: Sequence[str]) -> list[str]:
    """Report keys: the method name, or "method (weights)" where a method is evaluated more than once.

    Two weight files of one method would otherwise share a key, and the second would silently
    replace the first.
    """
    names = [method if list(methods).count(method) == 1 else f"{method} ({Path(source).stem})"
             for method, source in zip(methods, sources)]
    return [name if names.count(name) == 1 else f"{name} #{n + 1}" for n, name in enumerate(names)]


def _cell(stats: Optional[dict]) -> str:
    return "-" if stats is None or stats["mean"] is None else f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def markdown_table(report: dict) -> str:
    """Table 1 (at each method's T_fg), the T_fg sweep and the minimum-size sweep, as Markdown."""
    head = "| Method | Pos. Dice | Pos. Recall | Pos. Precision | Neg. Dice | All Dice | Patients (+/-) |"
    lines = [head, "|" + "---|" * 7]
    for method, entry in report["methods"].items():
        t = entry["table"]
        lines.append(f"| {method} | {_cell(t['positive']['dice'])} | {_cell(t['positive']['recall'])} | "
                     f"{_cell(t['positive']['precision'])} | {_cell(t['negative']['dice'])} | {_cell(t['all']['dice'])} | "
                     f"{t['positive']['patients']}/{t['negative']['patients']} |")
    for method, entry in report["methods"].items():
        sizes = entry.get("size_sweep") or {}
        sweeps = [(f"{method}: T_fg", "t_fg", entry["sweep"]),
                  (f"{method}: min. lesion mL at T_fg {sizes.get('t_fg')}", "min_lesion_ml", sizes.get("rows") or [])]
        for title, key, rows in sweeps:
            if not rows:
                continue
            lines += ["", f"| {title} | " + " | ".join(f"{row[key]:g}" for row in rows) + " |", "|" + "---|" * (len(rows) + 1)]
            for group, label in (("positive", "positive Dice"), ("negative", "negative Dice")):
                lines.append(f"| {label} | " + " | ".join(_cell(row[group]["dice"]) for row in rows) + " |")
    return "\n".join(lines)
