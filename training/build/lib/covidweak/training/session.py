"""One training run from the command line's arguments: config, data, split, run folder, loop."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from ..errors import InputError
from . import distributed
from .checkpoint import load_checkpoint
from .config import CONFIG_DIR, build_config, dump_config
from .loop import FitResult, fit
from .runs import RunFolder, run_info, write_run_info
from .task import TaskData
from .tasks import get_task


def load_records(data: Path, max_studies: Optional[int] = None):
    from ..datasets import open_dataset

    records = open_dataset(Path(data))
    if not records:
        raise InputError(f"dataset {data} lists no studies; add studies to its manifest or point to another dataset")
    if max_studies is not None:
        # Patient by patient in a fixed order, so a smaller run is a subset of the full one.
        records = sorted(records, key=lambda r: (r.patient_id, r.study_id))[:max_studies]
    return records


def default_config_file(task_name: str) -> Optional[Path]:
    path = CONFIG_DIR / f"{task_name}.yaml"
    return path if path.is_file() else None


def train(task_name: str, data: Path, out: Path, config_file=None, overrides: Iterable[str] = (),
          device: str = "auto", resume: bool = False, progress=None) -> FitResult:
    """Train ``task_name`` on the dataset at ``data`` into the run folder ``out``.

    Without ``config_file`` the task's paper config (``training/configs/<task>.yaml``) is used.
    With ``resume`` the run's own config.yaml is the base (``overrides`` still apply, e.g.
    more epochs), and its split.json decides the split.
    """
    from ..datasets import read_split, split_by_patient, write_split

    task = get_task(task_name)
    folder = RunFolder(out)
    world, torch_device = distributed.start(device)
    try:
        if resume:
            folder.prepare(resume=True)
        checkpoint = load_checkpoint(folder.last, task.name) if resume else None
        base = folder.config if resume else (config_file or default_config_file(task.name))
        config = build_config(task, base, overrides)
        records = load_records(data, config["data"]["max_studies"])
        if resume:
            splits = read_split(folder.split, records)
        else:
            splits = split_by_patient(records, config["data"]["fractions"], seed=config["seed"])
        # Only now, with config and data checked, does a new run folder appear.
        if world.is_main and not resume:
            folder.prepare(resume=False)
        distributed.barrier(world)
        if world.is_main:
            if not resume:
                write_split(folder.split, splits, seed=config["seed"], fractions=config["data"]["fractions"])
            folder.config.write_text(dump_config(config), encoding="utf-8")
            write_run_info(folder, run_info(data, records, config["seed"], torch_device, world.size))
        task.prepare(TaskData(splits=splits, root=Path(data)), config)
        return fit(task, config, folder, torch_device, world, checkpoint, progress)
    finally:
        distributed.stop(world)
