"""The run folder: what a training run leaves behind, enough to reproduce and audit it.

::

    RUN_DIR/config.yaml              the resolved config (every default filled in)
    RUN_DIR/run.json                 commit, package versions, data manifest hash, seed, device, start
    RUN_DIR/split.json               the patient split (re-read on --resume)
    RUN_DIR/metrics.csv              step, epoch, split, metric, value (one row per number)
    RUN_DIR/tb/                      the same numbers for TensorBoard
    RUN_DIR/checkpoints/last.pt      after every epoch
    RUN_DIR/checkpoints/epoch-NNN.pt the last ``keep_last`` epochs (Kim et al. ensemble the last ones)
    RUN_DIR/checkpoints/best.pt      the epoch with the best selection metric
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Optional, Sequence

from .. import __version__
from ..errors import InputError
from ..records import StudyRecord
from .checkpoint import atomic_save

METRIC_COLUMNS = ("step", "epoch", "split", "metric", "value")


class RunFolder:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.checkpoints = self.root / "checkpoints"
        self.config = self.root / "config.yaml"
        self.run_json = self.root / "run.json"
        self.split = self.root / "split.json"
        self.metrics = self.root / "metrics.csv"
        self.tb = self.root / "tb"
        self.last = self.checkpoints / "last.pt"
        self.best = self.checkpoints / "best.pt"

    def prepare(self, resume: bool) -> None:
        """Create the folder; refuse one with content unless resuming, and a resume without a checkpoint."""
        if resume:
            if not self.last.is_file():
                raise InputError(f"--resume: {self.last} not found; start the run without --resume")
            # Left by a save that was killed (atomic_save cannot clean up after SIGKILL).
            for stale in self.checkpoints.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        elif self.root.exists() and any(self.root.iterdir()):
            raise InputError(f"run folder {self.root} is not empty: pass --resume to continue it or choose a new --out")
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch-{epoch:03d}.pt"

    def epoch_checkpoints(self) -> list[Path]:
        return sorted(self.checkpoints.glob("epoch-[0-9][0-9][0-9].pt"))

    def save_checkpoint(self, payload: dict, epoch: int, keep_last: int, is_best: bool) -> None:
        """``epoch-NNN.pt`` then ``last.pt`` (and ``best.pt``); prune to the last ``keep_last`` epochs."""
        atomic_save(payload, self.epoch_checkpoint(epoch))
        atomic_save(payload, self.last)
        if is_best:
            atomic_save(payload, self.best)
        for old in self.epoch_checkpoints()[:-keep_last]:
            old.unlink(missing_ok=True)


def manifest_hash(data_path: Path, records: Sequence[StudyRecord]) -> str:
    """sha256 of the manifest file when the data has one, else of the sorted record list."""
    data_path = Path(data_path)
    candidates = [data_path] if data_path.is_file() else [data_path / "manifest.csv"]
    for candidate in candidates:
        if candidate.is_file():
            return "sha256:" + hashlib.sha256(candidate.read_bytes()).hexdigest()
    listing = "\n".join(sorted(f"{r.study_id}\t{r.patient_id}\t{r.diagnosis}\t{r.ct_path}" for r in records))
    return "sha256:" + hashlib.sha256(listing.encode()).hexdigest()


def git_commit() -> Optional[str]:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def run_info(data_path: Path, records: Sequence[StudyRecord], seed: int, device, world_size: int) -> dict:
    import monai
    import numpy
    import torch

    return {
        "covidweak": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": numpy.__version__,
        "data": str(data_path),
        "data_manifest_hash": manifest_hash(data_path, records),
        "studies": len(records),
        "seed": seed,
        "device": str(device),
        "world_size": world_size,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_run_info(folder: RunFolder, info: dict) -> None:
    """run.json; a resumed run appends its own start under ``resumed``."""
    if folder.run_json.is_file():
        previous = json.loads(folder.run_json.read_text(encoding="utf-8"))
        previous.setdefault("resumed", []).append({k: info[k] for k in ("started", "device", "git_commit")})
        info = previous
    folder.run_json.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


class MetricsLog:
    """Append rows to metrics.csv and scalars to TensorBoard (rank 0 only)."""

    def __init__(self, folder: RunFolder, resume_step: Optional[int] = None):
        from torch.utils.tensorboard import SummaryWriter

        self.path = folder.metrics
        if resume_step is not None and self.path.is_file():
            # Rows after the checkpoint were written by the interrupted run and are about to be redone.
            with open(self.path, newline="", encoding="utf-8") as stream:
                kept = [row for row in csv.DictReader(stream) if int(row["step"]) <= resume_step]
            self._rewrite(kept)
        elif not self.path.is_file():
            self._rewrite([])
        self.stream = open(self.path, "a", newline="", encoding="utf-8")
        self.writer = csv.writer(self.stream)
        self.tb = SummaryWriter(log_dir=str(folder.tb))

    def _rewrite(self, rows: list[dict]) -> None:
        with open(self.path, "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def log(self, step: int, epoch: int, split: str, values: dict) -> None:
        for name, value in values.items():
            self.writer.writerow([step, epoch, split, name, f"{float(value):.6g}"])
            self.tb.add_scalar(f"{split}/{name}", float(value), step)
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()
        self.tb.close()


def read_metrics(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as stream:
        return [dict(row, step=int(row["step"]), epoch=int(row["epoch"]), value=float(row["value"]))
                for row in csv.DictReader(stream)]
