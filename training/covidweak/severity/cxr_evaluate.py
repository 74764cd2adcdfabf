"""Kim et al.'s severity metrics on held-out radiographs (Tables 2 and 3 layout).

Every study runs through the whole inference pipeline (:func:`covidweak.severity.cxr_infer.run_cxr`:
the cxr-lungs network's lungs, not the dataset's), and its 3x2 probability array is compared
with the dataset's label array: MSE, MAE, Pearson CC and R^2 of the global score, mean AUC
over the six zones (:func:`severity_metrics`). Each row also
gives ``constant_mse``, the MSE of the best constant guess on the same studies (the variance of
their global scores): the floor a model has to beat, since a skewed label mix can make a small
MSE cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..progress import Progress
from .cxr_rmp import SEVERITY_THRESHOLD

PAPER_TABLE3 = {
    # Kim et al., Table 3 (CNUH external test set): MSE, MAE, CC, R^2, mean AUC.
    "labelled only (Brixia not included)": (1.926, 1.012, 0.744, 0.510, 0.808),
    "supervised (Brixia labels)": (1.889, 0.926, 0.760, 0.520, 0.882),
    "semi-supervised, progressive": (1.296, 0.827, 0.836, 0.670, 0.892),
    "semi-supervised, one step": (1.963, 1.074, 0.729, 0.501, 0.848),
}
PAPER_TABLE2 = {
    # Kim et al., Table 2: the hybrid ViT against a DenseNet-121 backbone, same training.
    "D121+ViT-B/16": (1.889, 0.926, 0.760, 0.520, 0.882),
    "DenseNet-121": (2.000, 0.914, 0.730, 0.491, 0.873),
}
METRICS = ("mse", "mae", "cc", "r2", "mean_auc")


def severity_metrics(predicted, truth) -> dict[str, float]:
    """(N, 3, 2) predicted probabilities and 0/1 labels -> Kim et al.'s metrics (Sec. 3).

    MSE, MAE, Pearson CC and R^2 of the global score (sum of the array binarised at 0.5,
    0-6) against the true score; mean over the six zones of the ROC AUC (zones whose test
    labels are all one class are left out of the mean, and counted).
    """
    from scipy.stats import pearsonr
    from sklearn.metrics import r2_score, roc_auc_score

    predicted, truth = np.asarray(predicted, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    score = (predicted >= SEVERITY_THRESHOLD).sum(axis=(1, 2))
    true_score = truth.sum(axis=(1, 2))
    error = score - true_score
    constant = np.ptp(score) == 0 or np.ptp(true_score) == 0
    aucs = [roc_auc_score(truth[:, r, c], predicted[:, r, c]) for r in range(3) for c in range(2)
            if np.ptp(truth[:, r, c]) > 0]
    return {"mse": float(np.mean(error ** 2)), "mae": float(np.mean(np.abs(error))),
            "cc": float("nan") if constant else float(pearsonr(score, true_score)[0]),
            "r2": float(r2_score(true_score, score)) if np.ptp(true_score) > 0 else float("nan"),
            "mean_auc": float(np.mean(aucs)) if aucs else float("nan"), "auc_zones": len(aucs),
            "studies": int(len(score))}


def select_studies(records: list, split: str, weights: str) -> tuple[list, dict]:
    """The studies to score: all, or the validation or test patients of the run that trained registered
    ``weights`` (its seed and fractions come from the registry entry's config)."""
    from ..datasets import split_by_patient
    from ..models.weights import read_registry

    if split == "all":
        return records, {"split": "all", "studies": len(records)}
    entry = next((e for e in read_registry()["models"] if e.get("name") == str(weights)), None)
    if entry is None or "config" not in entry:
        raise InputError(f"--split {split} needs registered weights that record their training split; {weights} does "
                         "not: pass --split all with a held-out dataset")
    config = entry["config"]
    fractions = config.get("data", {}).get("fractions", [0.7, 0.15, 0.15])
    chosen = split_by_patient(records, fractions, seed=int(config["seed"]))[split]
    return chosen, {"split": split, "seed": int(config["seed"]), "fractions": list(fractions), "studies": len(chosen)}


def evaluate_weights(records: list, severity_model, lungs_model, device: str = "cpu",
                     progress: Optional[Progress] = None) -> dict:
    """Metrics of one severity network on ``records`` (each with cxr_path and severity_array)."""
    import SimpleITK as sitk

    from .cxr_infer import run_cxr

    predicted, truth, refused = [], [], []
    progress = progress or Progress()
    for done, record in enumerate(records):
        progress.update(done, len(records), "evaluate severity")
        try:
            result = run_cxr(sitk.ReadImage(str(record.extra["cxr_path"])), severity_model, lungs_model, device)
        except InputError as error:  # e.g. lungs not found: counted, not hidden
            refused.append({"study_id": record.study_id, "reason": str(error)})
            continue
        predicted.append(result.probability)
        truth.append(np.asarray(record.extra["severity_array"], dtype=float))
    progress.update(len(records), len(records), "evaluate severity")
    if not predicted:
        raise InputError("every study was refused (see the reasons above); check the lung network and the data")
    truth = np.stack(truth)
    return {**severity_metrics(np.stack(predicted), truth), "constant_mse": float(np.var(truth.sum(axis=(1, 2)))),
            "refused": refused}


def evaluate(data: Path, weights: Sequence[str], lungs_weights: str, split: str = "test", device: str = "cpu",
             labels: Optional[Sequence[str]] = None, progress: Optional[Progress] = None) -> dict:
    """The report of ``covidweak evaluate severity``: one row per severity weight file or name."""
    from .. import __version__
    from ..datasets import open_dataset
    from ..models.weights import load_weights

    if labels is not None and len(labels) != len(weights):
        raise InputError(f"{len(labels)} --labels for {len(weights)} --weights: give one per weights, in order")
    records = [r for r in open_dataset(Path(data)) if "cxr_path" in r.extra and "severity_array" in r.extra]
    if not records:
        raise InputError(f"{data} has no radiographs with severity arrays: use a phantom dataset")
    lungs_model = load_weights(lungs_weights, method="cxr-lungs", device=device)
    report = {"data": str(data), "covidweak_version": __version__, "lungs_weights": str(lungs_weights),
              "lungs_sha256": lungs_model.sha256, "rows": {},
              "paper": {"table3": PAPER_TABLE3, "table2": PAPER_TABLE2, "columns": list(METRICS)},
              "note": "research use only; global score = sum of the 3x2 array binarised at 0.5"}
    for n, source in enumerate(weights):
        model = load_weights(source, method="severity", device=device)
        chosen, selection = select_studies(records, split, source)
        depth = (model.arch.get("vit") or {}).get("depth")
        report["rows"][labels[n] if labels else str(source)] = {
            "weights": str(model.path), "weights_sha256": model.sha256,
            "backbone": "DenseNet only (no transformer)" if depth == 0 else "DenseNet + ViT",
            **selection, **evaluate_weights(chosen, model, lungs_model, device, progress)}
    return report


def _cell(value) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def markdown_table(report: dict) -> str:
    """Measured rows, then the paper's Table 3 and Table 2 rows for comparison."""
    lines = ["| model | studies | MSE | MAE | CC | R^2 | mean AUC | MSE of a constant |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in report["rows"].items():
        lines.append(f"| {name} | {row['studies']} | " + " | ".join(_cell(row[m]) for m in METRICS)
                     + f" | {_cell(row.get('constant_mse'))} |")
    for table, rows in (("Table 3", PAPER_TABLE3), ("Table 2", PAPER_TABLE2)):
        for name, values in rows.items():
            lines.append(f"| paper {table}: {name} | CNUH 81 | " + " | ".join(_cell(v) for v in values) + " | - |")
    return "\n".join(lines)
