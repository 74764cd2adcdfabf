"""``ducn``: DuCN's joint training of COVID-19 detection and similar-case recommendation (Peng et al.).

Each training sample is six lung slices (Sect. 2.2):

* detection triplet: anchor a from a COVID-19 study; positive from a COVID-19 study of another
  patient; negative from a CAP or normal study. The detection child's embeddings give the
  triplet loss, its 2-way layer the cross-entropy of all three images (L_D, Eq. 3);
* recommendation triplet: anchor; positive another lung slice of the same patient (any of the
  patient's studies, follow-ups included); negative a slice of another patient with the same
  diagnosis (L_SCR, triplet loss only). The paper draws this anchor from COVID-19 cases
  (``params.scr_anchor: covid``); ``any`` draws it from every diagnosis that has two or more
  training patients, for a library that should rank CAP and normal cases too.
  ``params.scr_positive: similar_lesions`` (not in the paper) replaces this same-patient
  positive, which rewards anatomy (the paper's conclusion calls it not rigorous), by the
  similarity of the studies' lesion tables (:mod:`covidweak.similar.similarity`): the anchor
  is any usable slice (a lesion slice of a study with lesions), the positive a usable slice of
  another patient's study at least :data:`~covidweak.similar.similarity.RELEVANT_SIMILARITY`
  similar, the negative one of a less similar study. Needs a dataset with lesion tables.

L_total = 0.3 L_D + 0.7 L_SCR (Eq. 2). The paper balances COVID-19 against other images by
flip/rotation augmentation; here every detection triplet already holds two COVID-19 images and
one other, so no augmentation is used. An epoch has ``params.samples_per_epoch`` samples
(0: one per COVID-19 training slice, each slice anchoring once), drawn from (seed, epoch).

Validation: the same loss on samples drawn once with a fixed seed from the val split
(the selection metric, lower is better), plus detection metrics per slice and per study
(:func:`covidweak.similar.metrics.study_probability`).

``params.lesion_slices_only`` (not in the paper, default off): detection triplets take COVID-19 and
CAP slices only where the dataset marks a lesion (phantom ``slice_has_lesion``). A COVID-19 study's
lesion-free slices look like a normal study's, so labelling them COVID-19 is label noise; the
paper's CC-CCII images do not say whether they had the same problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from ...errors import InputError
from ...models.ducn import DEFAULT_DUCN_ARCH, build_ducn, load_imagenet_init
from ...preprocess import DUCN_SIZE
from ...preprocess.lungbox import BOX_SHAPE
from ...weakseg.prepare import WHOLE_SLICE
from ..task import ExportSpec, TaskData

TUPLE_SIZE = 6  # a, positive, negative for detection, then anchor, positive, negative for recommendation
DETECTION_LABELS = (1, 1, 0)  # anchor and positive are COVID-19, the negative is not
SCR_POSITIVES = ("same_patient", "similar_lesions")  # params.scr_positive, see the module docstring
VALIDATION_SEED = 12345
"""Fixed seed of the validation samples, so every epoch's validation loss compares the same tuples."""


class SlicePool:
    """Lung slices of a split, with the indices the triplet samplers draw from.

    channels: (n, 3, S, S) float16; study / patient: (n,) int ids per slice; diagnosis: (n,) str;
    lesion: (n,) bool, whether the slice shows a lesion (all True when the dataset does not say);
    similarity: (S, S) lesion similarity of the S studies, or None when the dataset has no lesion tables.
    """

    def __init__(self, channels: np.ndarray, study: np.ndarray, patient: np.ndarray, diagnosis: np.ndarray,
                 lesion: np.ndarray, similarity: Optional[np.ndarray] = None):
        self.channels, self.study, self.patient, self.diagnosis = channels, study, patient, diagnosis
        self.lesion, self.similarity = lesion, similarity
        self.covid = diagnosis == "covid"
        self.by_patient = {int(p): np.flatnonzero(patient == p) for p in np.unique(patient)}
        self.patients_by_diagnosis = {str(d): np.unique(patient[diagnosis == d]) for d in np.unique(diagnosis)}

    def draw(self, rng: np.random.Generator, n: int, scr_anchor: str, where: str,
             lesion_slices_only: bool = False, scr_positive: str = "same_patient") -> np.ndarray:
        """(n, 6) slice rows: detection (a, p, n) then recommendation (a, p, n), see the module docstring.

        lesion_slices_only: detection triplets take COVID-19 and CAP slices only where they show a lesion;
        scr_positive: "same_patient" (the paper) or "similar_lesions".
        """
        usable = self.lesion | (self.diagnosis == "normal") if lesion_slices_only else np.ones_like(self.covid)
        covid_rows, other_rows = np.flatnonzero(self.covid & usable), np.flatnonzero(~self.covid & usable)
        if np.unique(self.patient[covid_rows]).size < 2 or other_rows.size == 0:
            raise InputError(f"DuCN detection triplets need COVID-19 slices of two patients and one CAP or normal "
                             f"slice in the {where} split; use a dataset with more patients")
        recommend = (self._similar_lesion_sampler(where) if scr_positive == "similar_lesions"
                     else self._same_patient_sampler(scr_anchor, where))
        rows = np.empty((n, TUPLE_SIZE), dtype=np.int64)
        for i in range(n):
            a = rng.choice(covid_rows)
            others = covid_rows[self.patient[covid_rows] != self.patient[a]]
            rows[i, :3] = (a, rng.choice(others), rng.choice(other_rows))
            rows[i, 3:] = recommend(rng)
        return rows

    def _same_patient_sampler(self, scr_anchor: str, where: str):
        """rng -> one (anchor, same-patient slice, other patient of the same diagnosis) triplet (the paper)."""
        eligible = [d for d, p in self.patients_by_diagnosis.items() if p.size >= 2
                    and (scr_anchor == "any" or d == "covid")]
        anchor_rows = np.flatnonzero(np.isin(self.diagnosis, eligible))
        anchor_rows = anchor_rows[[self.by_patient[int(self.patient[r])].size >= 2 for r in anchor_rows]]
        if anchor_rows.size == 0:
            raise InputError(f"DuCN recommendation triplets need two patients of one diagnosis with two lung slices "
                             f"each in the {where} split; use a dataset with more patients")

        def triplet(rng: np.random.Generator) -> tuple[int, int, int]:
            r = rng.choice(anchor_rows)
            same_patient = self.by_patient[int(self.patient[r])]
            negatives = np.flatnonzero((self.diagnosis == self.diagnosis[r]) & (self.patient != self.patient[r]))
            return r, rng.choice(same_patient[same_patient != r]), rng.choice(negatives)

        return triplet

    def _similar_lesion_sampler(self, where: str):
        """rng -> one recommendation triplet by lesion similarity (see the module docstring)."""
        from ...similar.similarity import RELEVANT_SIMILARITY

        if self.similarity is None:
            raise InputError(f"params.scr_positive similar_lesions needs lesion tables (a phantom's meta.json) "
                             f"for every study of the {where} split; use scr_positive same_patient")
        # A slice shows its study's lesions when the study has any; lesion-free studies offer every slice.
        has_lesion = np.zeros(self.similarity.shape[0], bool)
        has_lesion[self.study[self.lesion & (self.diagnosis != "normal")]] = True
        shows = self.lesion | ~has_lesion[self.study]
        rows_of = {int(s): np.flatnonzero((self.study == s) & shows) for s in np.unique(self.study)}
        studies = np.array(sorted(s for s, rows in rows_of.items() if rows.size))
        patient_of = np.array([int(self.patient[rows_of[int(s)][0]]) for s in studies])
        if np.unique(patient_of).size < 2:
            raise InputError(f"DuCN recommendation triplets need two patients in the {where} split; "
                             "use a dataset with more patients")

        def triplet(rng: np.random.Generator) -> tuple[int, int, int]:
            k = int(rng.integers(studies.size))
            others = studies[patient_of != patient_of[k]]
            similarity = self.similarity[studies[k], others]
            close, far = others[similarity >= RELEVANT_SIMILARITY], others[similarity < RELEVANT_SIMILARITY]
            if close.size == 0 or far.size == 0:
                # Nobody on one side of the threshold: the most and the least similar study stand in.
                order = others[np.argsort(similarity, kind="stable")]
                close, far = order[-1:], order[:1]
            return (rng.choice(rows_of[int(studies[k])]), rng.choice(rows_of[int(rng.choice(close))]),
                    rng.choice(rows_of[int(rng.choice(far))]))

        return triplet


class TupleDataset(Dataset):
    """(6, 3, S, S) float32 tuples, one per row of ``rows``; the loop batches and shuffles them."""

    def __init__(self, pool: SlicePool, rows: np.ndarray):
        self.pool, self.rows = pool, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        return torch.from_numpy(self.pool.channels[self.rows[index]].astype(np.float32))


def prepare_pool(records, preprocess: dict, ablation: str, progress=None) -> tuple[SlicePool, list[tuple[int, int]]]:
    """Read every study's lung slices into a :class:`SlicePool` (the input grid of ``preprocess``, see
    :func:`covidweak.similar.inputs.slice_channels`); also (first row, end row) per study."""
    from ...io import read_ct, read_image
    from ...similar.inputs import apply_ablation, study_inputs

    channels, study, patient, diagnosis, lesion, spans = [], [], [], [], [], []
    patient_ids = {pid: i for i, pid in enumerate(sorted({r.patient_id for r in records}))}
    start = 0
    for s, record in enumerate(records):
        lungs = read_image(record.lung_mask_path) if record.lung_mask_path is not None else None
        inputs = study_inputs(read_ct(record.ct_path), lungs, preprocess)
        n = len(inputs.channels)
        channels.append(apply_ablation(inputs.channels, ablation).astype(np.float16))
        study.append(np.full(n, s))
        patient.append(np.full(n, patient_ids[record.patient_id]))
        diagnosis.append(np.full(n, record.diagnosis, dtype=object))
        flags = record.extra.get("slice_has_lesion")
        lesion.append(np.asarray(flags, bool)[inputs.slice_numbers] if flags is not None else np.ones(n, bool))
        spans.append((start, start + n))
        start += n
    tables = [record.extra.get("lesions") for record in records]
    similarity = None
    if all(table is not None for table in tables):
        from ...similar.similarity import case_similarity

        similarity = np.array([[case_similarity(a, b) for b in tables] for a in tables])
    pool = SlicePool(np.concatenate(channels), np.concatenate(study), np.concatenate(patient),
                     np.concatenate(diagnosis).astype(str), np.concatenate(lesion), similarity)
    return pool, spans


def ducn_losses(model, batch, detection_labels) -> dict:
    """Eq. 1-3 on a batch of tuples (B, 6, 3, S, S): total, detection and recommendation losses."""
    from ...losses.triplet import detection_loss, total_loss, triplet_loss

    batch = batch.float()
    b = batch.shape[0]
    detect = batch[:, :3].reshape(b * 3, *batch.shape[2:])
    recommend = batch[:, 3:].reshape(b * 3, *batch.shape[2:])
    out = model(detect=detect, recommend=recommend)
    d = out.detection_embedding.float().view(b, 3, -1)
    r = out.recommendation_embedding.float().view(b, 3, -1)
    l_detection_triplet = triplet_loss(d[:, 0], d[:, 1], d[:, 2])
    l_detection = detection_loss(l_detection_triplet, out.detection_logits, detection_labels.repeat(b))
    l_recommendation = triplet_loss(r[:, 0], r[:, 1], r[:, 2])
    return {"loss": total_loss(l_detection, l_recommendation), "detection_loss": l_detection.detach(),
            "detection_triplet": l_detection_triplet.detach(), "recommendation_loss": l_recommendation.detach()}


class DuCnTask:
    name = "ducn"
    selection_metric = "loss"
    higher_is_better = False
    defaults = {
        "model": dict(DEFAULT_DUCN_ARCH),
        "params": {"ablation": "none", "scr_anchor": "covid", "samples_per_epoch": 0, "init_weights": "",
                   "lesion_slices_only": False, "scr_positive": "same_patient"},
        # geometry "lung_box" reads the shared 1.4 mm lung box of box_shape; "slice" the whole slice at input_size.
        "preprocess": {"input_size": DUCN_SIZE, "geometry": WHOLE_SLICE, "box_shape": list(BOX_SHAPE)},
    }

    def __init__(self):
        self.pools: dict[str, SlicePool] = {}
        self.val_spans: list[tuple[int, int]] = []
        self.val_records: list = []
        self.val_rows = None

    def build_model(self, config: dict):
        model = build_ducn(self.name, config["model"])
        init = config["params"]["init_weights"]
        if init:
            load_imagenet_init(model, Path(init).expanduser())
        return model

    def prepare(self, data: TaskData, config: dict) -> None:
        from ...similar.inputs import ABLATIONS

        params = config["params"]
        if params["ablation"] not in ABLATIONS:
            raise InputError(f"params.ablation '{params['ablation']}' is unknown: choose {', '.join(ABLATIONS)}")
        if params["scr_anchor"] not in ("covid", "any"):
            raise InputError(f"params.scr_anchor '{params['scr_anchor']}' is unknown: choose covid or any")
        if params["scr_positive"] not in SCR_POSITIVES:
            raise InputError(f"params.scr_positive '{params['scr_positive']}' is unknown: choose {' or '.join(SCR_POSITIVES)}")
        for split in ("train", "val"):
            records = data.splits.get(split, [])
            if not records:
                raise InputError(f"task ducn: the {split} split is empty; use more patients or change data.fractions")
            self.pools[split], spans = prepare_pool(records, config["preprocess"], params["ablation"])
            if split == "val":
                self.val_spans, self.val_records = spans, records
        n_val = min(int(self.pools["val"].covid.sum()), 256)
        self.val_rows = self.pools["val"].draw(np.random.default_rng(VALIDATION_SEED), max(n_val, 1),
                                               params["scr_anchor"], "val", params["lesion_slices_only"],
                                               params["scr_positive"])

    def train_batches(self, config: dict, epoch: int, seed: int):
        pool = self.pools["train"]
        n = config["params"]["samples_per_epoch"] or int(pool.covid.sum())
        rng = np.random.default_rng([seed, epoch])
        params = config["params"]
        return TupleDataset(pool, pool.draw(rng, n, params["scr_anchor"], "train", params["lesion_slices_only"],
                                            params["scr_positive"]))

    def training_step(self, model, batch, config: dict, device) -> dict:
        return ducn_losses(model, batch, torch.tensor(DETECTION_LABELS, device=batch.device))

    def validate(self, model, config: dict, device) -> dict[str, float]:
        from ...similar.embed import covid_probabilities
        from ...similar.metrics import detection_metrics, study_probability

        pool, batch_size = self.pools["val"], config["batch_size"]
        labels = torch.tensor(DETECTION_LABELS, device=device)
        dataset = TupleDataset(pool, self.val_rows)
        sums: dict[str, float] = {}
        for start in range(0, len(dataset), batch_size):
            batch = torch.stack([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            for key, value in ducn_losses(model, batch.to(device), labels).items():
                sums[key] = sums.get(key, 0.0) + float(value) * len(batch)
        metrics = {key: value / len(dataset) for key, value in sums.items()}

        p_covid = covid_probabilities(model, pool.channels, batch_size, device)
        truth = pool.covid.astype(int)
        metrics.update({f"slice_{k}": v for k, v in detection_metrics(truth, p_covid).items()})
        study_p = [study_probability(p_covid[a:b]) for a, b in self.val_spans]
        study_truth = [int(r.diagnosis == "covid") for r in self.val_records]
        metrics.update({f"study_{k}": v for k, v in detection_metrics(study_truth, study_p).items()})
        return metrics

    def export_spec(self, config: dict, metrics: Optional[dict] = None) -> ExportSpec:
        from ...preprocess import HU_WINDOW

        return ExportSpec(method=self.name, arch=dict(config["model"]),
                          preprocess={**config["preprocess"], "input_size": int(config["preprocess"]["input_size"]),
                                      "ablation": config["params"]["ablation"],
                                      "intensity": f"HU window {list(HU_WINDOW)} to [0, 1]"})
