"""Tables 3 and 4 of Hu et al. (IEEE Access 2020) for trained diagnosis models on held-out patients.

Each model is run on every study of the test patients of its own training split (re-created from
the seed and fractions stored in its ``arch``) whose diagnosis is one of its classes. A study is
one case; intervals come from the patient bootstrap of :mod:`.metrics`. Table 3 has one row per
model (label: task and CA / NCA); Table 4 the per-class rows of the three-way models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..progress import Progress
from .metrics import METRICS, bootstrap_intervals, class_metrics, confusion_matrix, plain_accuracy
from .model import METHOD, PAPER_NAMES, task_name

PERCENT_METRICS = ("accuracy", "precision", "sensitivity", "specificity")


def row_label(arch: dict) -> str:
    """Table 3 row name, e.g. ``NP/COVID-19 (CA)``."""
    return f"{PAPER_NAMES[task_name(arch['classes'])]} ({'CA' if arch.get('contrast_augmentation') else 'NCA'})"


def evaluate_model(records: list, model, device: str = "auto", resamples: int = 2000,
                   progress: Optional[Progress] = None) -> dict:
    """Per-study probabilities and the metrics with intervals of one model on ``records``.

    Lungs come from each record's lung mask when it has one, else from the classical segmentation.
    """
    from ..io import read_ct, read_image
    from .predict import diagnose_ct

    classes = tuple(model.arch["classes"])
    records = [r for r in records if r.diagnosis in classes]
    if not records:
        raise InputError(f"no study with a diagnosis among {', '.join(classes)} to evaluate: check --data and --split")
    progress = progress or Progress()
    rows = []
    for done, record in enumerate(records):
        progress.update(done, len(records), f"diagnose {record.study_id}")
        lungs = read_image(record.lung_mask_path) if record.lung_mask_path else None
        result = diagnose_ct(read_ct(record.ct_path), model, lungs=lungs, device=device)
        rows.append({"study_id": record.study_id, "patient_id": record.patient_id, "diagnosis": record.diagnosis,
                     "prediction": result.prediction,
                     "probabilities": {c: float(p) for c, p in zip(classes, result.probability)}})
    progress.update(len(records), len(records), "evaluate")
    labels = np.array([classes.index(r["diagnosis"]) for r in rows])
    probs = np.array([[r["probabilities"][c] for c in classes] for r in rows])
    values = class_metrics(labels, probs, classes)
    intervals = bootstrap_intervals(lambda idx: {**class_metrics(labels[idx], probs[idx], classes),
                                                 "plain": {"accuracy": plain_accuracy(labels[idx], probs[idx])}},
                                    [r["patient_id"] for r in rows], resamples=resamples)
    table = {group: {m: {"value": values[group][m], "ci95": intervals[group][m]} for m in METRICS} for group in values}
    return {"classes": list(classes), "studies": len(rows), "patients": len({r["patient_id"] for r in rows}),
            "accuracy": {"value": plain_accuracy(labels, probs), "ci95": intervals["plain"]["accuracy"]},
            "confusion": confusion_matrix(labels, probs, len(classes)).tolist(), "metrics": table, "cases": rows}


def evaluate_models(data: Path, weights: Sequence[str], split: str = "test", device: str = "auto",
                    resamples: int = 2000, progress: Optional[Progress] = None) -> dict:
    """The report of ``covidweak evaluate diagnosis``: one entry per weight file, keyed by its Table 3 row."""
    from .. import __version__
    from ..datasets import open_dataset
    from ..models import load_weights
    from ..weakseg.evaluate import select_records

    records = open_dataset(Path(data))
    report = {"data": str(data), "covidweak_version": __version__, "models": {},
              "note": "research use only; Tables 3-4 layout of Hu et al. (IEEE Access 2020); "
                      "intervals: 95% patient bootstrap"}
    for source in weights:
        model = load_weights(source, method=METHOD)
        chosen, selection = select_records(records, split, model.arch.get("split", {}))
        label = row_label(model.arch)
        if label in report["models"]:
            label = f"{label} [{model.path.stem}]"
        report["models"][label] = {"weights": str(model.path), "weights_sha256": model.sha256, **selection,
                                   **evaluate_model(chosen, model, device, resamples, progress)}
    return report


def _cell(entry: dict, metric: str) -> str:
    value, (low, high) = entry["value"], entry["ci95"]
    if value is None or np.isnan(value):
        return "-"
    if metric in PERCENT_METRICS:
        return f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def markdown_tables(report: dict) -> str:
    """Table 3 (one row per model), Table 4 (per class, three-way models), and per model the plain
    accuracy and the confusion matrix, as Markdown."""
    head = "| {} | Accuracy (%) | Precision (%) | Sensitivity (%) | Specificity (%) | AUC | Studies (patients) |"
    lines = [head.format("Task"), "|" + "---|" * 7]
    for label, entry in report["models"].items():
        cells = " | ".join(_cell(entry["metrics"]["overall"][m], m) for m in METRICS)
        lines.append(f"| {label} | {cells} | {entry['studies']} ({entry['patients']}) |")
    three_way = {label: entry for label, entry in report["models"].items() if len(entry["classes"]) == 3}
    if three_way:
        lines += ["", head.format("Class"), "|" + "---|" * 7]
        for label, entry in three_way.items():
            suffix = label[label.rfind("("):]
            for c in entry["classes"]:
                cells = " | ".join(_cell(entry["metrics"][c][m], m) for m in METRICS)
                lines.append(f"| {c} {suffix} | {cells} | {entry['studies']} ({entry['patients']}) |")
    for label, entry in report["models"].items():
        lines += ["", f"{label}: plain accuracy {_cell(entry['accuracy'], 'accuracy')} % "
                      f"(share of studies given their true class; the Accuracy column above is the class mean of "
                      f"one-vs-rest accuracies, as in the paper)", "",
                  "| true \\ predicted | " + " | ".join(entry["classes"]) + " |", "|---|" + "---|" * len(entry["classes"])]
        lines += [f"| {c} | " + " | ".join(str(n) for n in row) + " |" for c, row in zip(entry["classes"], entry["confusion"])]
    return "\n".join(lines)
