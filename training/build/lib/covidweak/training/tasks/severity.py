"""Kim et al.'s chest X-ray severity tasks: ``cxr-embed``, ``severity`` and ``severity-selftrain``.

* ``cxr-embed`` pre-trains the feature embedding network F (DenseNet-121 before transition
  layer 3) as a multi-label PCAM classifier. Kim et al. pre-train on CheXpert's findings;
  the phantom offers lesion type present (GGO, crazy paving, consolidation) and lesion
  present per CT lung zone, which stand in for them.
* ``severity`` trains the hybrid ViT and map head on frozen F with BCE between the ROI
  max-pooled 3x2 array and the label array (Sec. 2.2), on a seeded ``labelled_fraction`` of
  the training split's patients (1.0: all). ``model.tune_embed: true`` trains F's weights too,
  at ``params.embed_lr_factor`` times the heads' learning rate (an ablation; Kim et al. freeze
  F), and F's features are then computed for every batch instead of once.
* ``severity-selftrain`` adds the rest of the training split without labels, progressively
  or in one step (Sec. 2.3, :mod:`covidweak.severity.cxr_selftrain`).

Epochs are ``steps_per_epoch`` updates each, drawn from the current pool, so epoch ends
fall on the paper's ensemble checkpoints (500 apart). The checkpoint ensemble of Sec. 3
lives inside the network (:class:`~covidweak.models.severity_vit.SeverityNet`): the
trained head is copied into a spare slot ``steps_per_epoch`` and twice that many updates
before the end, so the ``last`` checkpoint holds the models at T - 2g, T - g and T and one
weight file ships all three (export with ``--checkpoint last``).

Teacher pseudo-labels are the teacher's binarised 3x2 arrays, computed for the whole pool
each time the teacher changes; the teacher is the student's weights at that update. A
resumed run relabels its pool with the weights it resumes from.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ...errors import InputError
from ...models.severity_vit import EMBED_LABELS, INPUT_SIZES, build_severity_model
from ...severity import cxr_selftrain
from ...severity.cxr_data import load_arrays
from ...severity.cxr_evaluate import severity_metrics
from ...severity.cxr_geometry import WHOLE_IMAGE
from ...severity.cxr_rmp import SEVERITY_THRESHOLD, roi_max_pool
from ..task import ExportSpec, TaskData

INTENSITY = ("Kim et al.: resize, 3x3 Gaussian blur, histogram equalisation, standardisation; "
             "the network sees the image times the lung mask")
ENSEMBLE_MEMBERS = 3
"""Kim et al., Sec. 3: the models at 12,000, 11,500 and 11,000 updates are ensembled."""
EMBED_LR_FACTOR = 0.1
"""F's learning rate beside the heads' when it is tuned: F starts trained, the heads do not."""
STEPS_PER_EPOCH = 500
"""Gap between the ensembled checkpoints (Sec. 3), used as the epoch length."""


def _tensors(arrays, device):
    import torch

    return {name: torch.as_tensor(getattr(arrays, name)).to(device)
            for name in ("images", "masks", "regions", "severity", "findings")}


def copy_weights(target, source, what: str) -> None:
    """Load ``source``'s parameters into ``target`` (torch modules of one architecture); InputError naming
    ``what`` when the config's model section built another one."""
    try:
        target.load_state_dict(source.state_dict())
    except RuntimeError:
        raise InputError(f"{what} does not fit model.size/model.embed of this config; use cxr-embed weights "
                         "trained with the same model section") from None


class CxrEmbedTask:
    """Pre-training of F as a PCAM multi-label classifier of :data:`EMBED_LABELS`."""

    name = "cxr-embed"
    selection_metric = "mean_auc"  # a feature extractor is kept for ranking findings, not for calibration
    higher_is_better = True
    defaults = {"model": {"size": "light", "embed": None}, "params": {"init_from": None},
                "preprocess": {"size": INPUT_SIZES["light"], "geometry": WHOLE_IMAGE}}

    def __init__(self):
        self.arrays = {}

    def build_model(self, config: dict):
        """F, started from ``params.init_from`` (earlier cxr-embed weights of the same model section) when given.

        Kim et al. pre-train F on CheXpert before the severity task; starting a new geometry's F from
        the weights of another plays that part where the phantom findings alone teach F too slowly.
        """
        from ...models.weights import load_weights

        model = build_severity_model(self.name, config["model"])
        source = config["params"]["init_from"]
        if source:
            copy_weights(model, load_weights(source, method="cxr-embed").model, f"params.init_from {source}")
        return model

    def prepare(self, data: TaskData, config: dict) -> None:
        for split in ("train", "val"):
            self.arrays[split] = load_arrays(data.splits.get(split, []), config["preprocess"])

    def train_batches(self, config: dict, epoch: int, seed: int):
        import torch
        from torch.utils.data import TensorDataset

        train = self.arrays["train"]
        return TensorDataset(torch.as_tensor(train.images * train.masks), torch.as_tensor(train.findings))

    def training_step(self, model, batch, config: dict, device) -> dict:
        import torch.nn.functional as F

        images, findings = batch
        return {"loss": F.binary_cross_entropy_with_logits(model(images).float(), findings)}

    def validate(self, model, config: dict, device) -> dict[str, float]:
        import torch
        import torch.nn.functional as F
        from sklearn.metrics import roc_auc_score

        val = _tensors(self.arrays["val"], device)
        logits = torch.cat([model(val["images"][i:i + config["batch_size"]] * val["masks"][i:i + config["batch_size"]])
                            for i in range(0, len(val["images"]), config["batch_size"])]).float()
        truth, scores = val["findings"].cpu().numpy(), torch.sigmoid(logits).cpu().numpy()
        aucs = [roc_auc_score(truth[:, k], scores[:, k]) for k in range(len(EMBED_LABELS)) if np.ptp(truth[:, k]) > 0]
        return {"bce": float(F.binary_cross_entropy_with_logits(logits, val["findings"])),
                "mean_auc": float(np.mean(aucs)) if aucs else float("nan")}

    def export_spec(self, config: dict, metrics: Optional[dict] = None) -> ExportSpec:
        return ExportSpec(method=self.name, arch=dict(config["model"]),
                          preprocess={"input_size": config["preprocess"]["size"], "intensity": INTENSITY,
                                      "geometry": config["preprocess"]["geometry"]})


class SeverityTask:
    """Hybrid ViT + map head on frozen F, BCE of the RMP array (Kim et al., Sec. 2.2)."""

    name = "severity"
    selection_metric = "mse"
    higher_is_better = False
    mode = "none"

    def __init__(self):
        self.arrays = {}
        self.cache = {}  # split -> tensors on the device, features added on first use
        self.labelled = np.zeros(0, dtype=bool)
        self.schedule = None
        self.stage = None
        self.pseudo = None

    @property
    def defaults(self) -> dict:
        return {
            "model": {"size": "light", "embed": None, "vit": None, "tune_embed": False},
            "params": {"embed_weights": None, "embed_lr_factor": EMBED_LR_FACTOR,
                       "labelled_fraction": 1.0, "unlabelled": self.mode,
                       "steps_per_epoch": STEPS_PER_EPOCH, "ensemble": ENSEMBLE_MEMBERS,
                       "first_step": cxr_selftrain.FIRST_STEP, "every": cxr_selftrain.EVERY,
                       "increments": cxr_selftrain.INCREMENTS},
            "preprocess": {"size": INPUT_SIZES["light"], "geometry": WHOLE_IMAGE},
        }

    def arch(self, config: dict) -> dict:
        return {**config["model"], "input_size": config["preprocess"]["size"], "members": config["params"]["ensemble"]}

    def build_model(self, config: dict):
        from ...models.weights import load_weights

        model = build_severity_model("severity", self.arch(config))
        source = config["params"]["embed_weights"]
        if source:
            loaded = load_weights(source, method="cxr-embed")
            geometry = loaded.preprocess.get("geometry", WHOLE_IMAGE)
            if geometry != config["preprocess"]["geometry"]:
                raise InputError(f"embedding weights {source} read radiographs as geometry '{geometry}', this config as "
                                 f"'{config['preprocess']['geometry']}': set preprocess.geometry to match, or pre-train "
                                 "cxr-embed with this config's preprocess section")
            copy_weights(model.embed, loaded.model.embed, f"embedding weights {source}")
        return model

    def parameter_groups(self, model, config: dict) -> list[dict]:
        """The optimiser's groups: the heads at the base rate, F (when tuned) at ``embed_lr_factor`` of it."""
        heads = [p for name, p in model.named_parameters() if not name.startswith("embed.")]
        groups = [{"params": heads}]
        if config["model"].get("tune_embed"):
            groups.append({"params": list(model.embed.parameters()),
                           "lr": float(config["optim"]["lr"]) * float(config["params"]["embed_lr_factor"])})
        return groups

    def prepare(self, data: TaskData, config: dict) -> None:
        params = config["params"]
        if params["unlabelled"] not in cxr_selftrain.MODES:
            raise InputError(f"params.unlabelled '{params['unlabelled']}': use one of {', '.join(cxr_selftrain.MODES)}")
        train = sorted(data.splits.get("train", []), key=lambda r: (r.patient_id, r.study_index))
        patients = sorted({r.patient_id for r in train})
        order = np.random.default_rng([config["seed"], 1]).permutation(len(patients))
        if not 0 < params["labelled_fraction"] <= 1:
            raise InputError(f"params.labelled_fraction {params['labelled_fraction']}: give a share in (0, 1]")
        count = max(1, int(round(params["labelled_fraction"] * len(patients))))
        chosen = {patients[i] for i in order[:count]}
        labelled = [r for r in train if r.patient_id in chosen]
        unlabelled = [r for r in train if r.patient_id not in chosen] if params["unlabelled"] != "none" else []
        self.arrays = {"train": load_arrays(labelled + unlabelled, config["preprocess"]),
                       "val": load_arrays(data.splits.get("val", []), config["preprocess"])}
        self.labelled = np.arange(len(labelled) + len(unlabelled)) < len(labelled)
        self.schedule = cxr_selftrain.SelfTrainSchedule(
            unlabelled=len(unlabelled), mode=params["unlabelled"], first_step=params["first_step"],
            every=params["every"], increments=params["increments"], seed=config["seed"])
        print(f"severity: {len(labelled)} labelled and {len(unlabelled)} unlabelled studies "
              f"({params['unlabelled']}), {len(data.splits.get('val', []))} for validation", flush=True)

    def pool(self, step: int) -> np.ndarray:
        """Training indices at update ``step``: every labelled study plus the schedule's unlabelled ones."""
        labelled = np.flatnonzero(self.labelled)
        return np.concatenate([labelled, len(labelled) + self.schedule.pool(step)])

    def train_batches(self, config: dict, epoch: int, seed: int):
        import torch

        per_epoch, size = config["params"]["steps_per_epoch"], config["batch_size"]
        batches = []
        for step in range(epoch * per_epoch, (epoch + 1) * per_epoch):
            pool = self.pool(step)
            index = np.random.default_rng([seed, step]).choice(pool, size, replace=len(pool) < size)
            batches.append({"index": torch.as_tensor(index), "step": torch.full((size,), step)})
        return batches

    def _cached(self, model, split: str, device) -> dict:
        """The split's tensors on ``device``, with F's features computed once when F is frozen."""
        import torch

        if split not in self.cache:
            tensors = _tensors(self.arrays[split], device)
            if not model.tune_embed:
                with torch.no_grad():
                    tensors["features"] = torch.cat([model.features(tensors["images"][i:i + 16], tensors["masks"][i:i + 16])
                                                     for i in range(0, len(tensors["images"]), 16)])
            self.cache[split] = tensors
        return self.cache[split]

    def _relabel(self, model, train: dict, step: int) -> None:
        """The student becomes the teacher: pseudo-label the current unlabelled pool with its arrays."""
        import torch

        pool = torch.as_tensor(self.pool(step)).to(train["severity"].device)
        self.pseudo = train["severity"].clone()
        unlabelled = pool[~torch.as_tensor(self.labelled).to(pool.device)[pool]]
        if len(unlabelled):
            was_training = model.training
            model.eval()
            with torch.no_grad():
                arrays = torch.cat([self._arrays(model, train, unlabelled[i:i + 16], trained_only=True)
                                    for i in range(0, len(unlabelled), 16)])
            model.train(was_training)
            self.pseudo[unlabelled] = (arrays >= SEVERITY_THRESHOLD).float()
        self.stage = self.schedule.stage(step)

    @staticmethod
    def _arrays(model, tensors: dict, index, trained_only: bool = False):
        """ROI max-pooled 3x2 arrays of the studies ``index``, from cached features or, with F tuned, the images."""
        inputs = {"features": tensors["features"][index]} if "features" in tensors else {"image": tensors["images"][index]}
        probability = model(tensors["masks"][index], trained_only=trained_only, **inputs)
        return roi_max_pool(probability[:, 0].float(), tensors["regions"][index])

    def training_step(self, model, batch, config: dict, device) -> dict:
        import torch
        import torch.nn.functional as F

        from ..loop import unwrap

        plain = unwrap(model)
        train = self._cached(plain, "train", device)
        step = int(batch["step"][0])
        if self.stage != self.schedule.stage(step):
            self._relabel(plain, train, step)
        total = config["max_steps"] or config["epochs"] * config["params"]["steps_per_epoch"]
        if step in [total - k * config["params"]["steps_per_epoch"] for k in range(1, config["params"]["ensemble"])]:
            plain.snapshot()
        index = batch["index"]
        predicted = self._arrays(model, train, index, trained_only=True)
        # The zones are max-pooled probabilities, not logits (Sect. 3.2), so the loss is BCE on
        # probabilities, which autocast refuses: it runs in float32 outside autocast.
        with torch.autocast(device_type=predicted.device.type, enabled=False):
            loss = F.binary_cross_entropy(predicted.float().clamp(1e-6, 1 - 1e-6), self.pseudo[index].float())
        return {"loss": loss, "labelled_share": labelled_share(self.labelled, index)}

    def validate(self, model, config: dict, device) -> dict[str, float]:
        import torch

        val = self._cached(model, "val", device)
        index = torch.arange(len(val["images"]), device=device)
        predicted = torch.cat([self._arrays(model, val, index[i:i + 16]) for i in range(0, len(index), 16)])
        metrics = severity_metrics(predicted.cpu().numpy(), val["severity"].cpu().numpy())
        return {k: v for k, v in metrics.items() if k in ("mse", "mae", "cc", "r2", "mean_auc")}

    def export_spec(self, config: dict, metrics: Optional[dict] = None) -> ExportSpec:
        return ExportSpec(method="severity", arch=self.arch(config),
                          preprocess={"input_size": config["preprocess"]["size"], "intensity": INTENSITY,
                                      "threshold": SEVERITY_THRESHOLD, "geometry": config["preprocess"]["geometry"]})


def labelled_share(labelled: np.ndarray, index) -> float:
    """Share of labelled studies in a batch (logged, to see the unlabelled data join)."""
    return float(labelled[index.cpu().numpy()].mean())


class SeveritySelfTrainTask(SeverityTask):
    """:class:`SeverityTask` with the unlabelled rest of the training split (progressive by default)."""

    name = "severity-selftrain"
    mode = "progressive"
