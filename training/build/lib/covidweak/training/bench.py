"""``covidweak bench train TASK``: training throughput and peak memory of fp32, bf16 and bf16 + compile.

One process builds the task, its config and its data as ``covidweak train`` does, and times
three variants of the same training step (:func:`~covidweak.training.loop.train_step` plus
the optimiser update) on one device: fp32 eager (the baseline), bf16 autocast, and bf16
autocast under ``torch.compile``. Every variant starts from the same initial weights (the
config's seed) and steps through the same batches, drawn once. Throughput is in slices per
second (network input images: a bag of 8 slices counts 8) and as a ratio to fp32 eager.
Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU, reset before each variant; on
the CPU it is the rise of the process's peak RSS (``resource.getrusage``), which, being a
high-water mark, shows 0 for a variant that needs no more than an earlier one.
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from ..device import add_device_argument, resolve_device
from ..errors import InputError
from .config import add_config_arguments, build_config, task_defaults
from .distributed import World
from .loop import build_model_and_optimizer, epoch_batches, train_step
from .session import default_config_file, load_records
from .task import TaskData
from .tasks import TASKS, get_task

VARIANTS = (("fp32 eager", "none", False), ("bf16", "bf16", False), ("bf16 + compile", "bf16", True))
"""(name, config ``amp``, config ``compile``); the first is the baseline of the ratios."""
BENCH_PHANTOM = dict(patients=4, studies_per_patient=1, seed=0, size=128, slices=32)
"""The data without --data: enough slices for a few batches, generated in seconds."""

DESCRIPTION = (
    "Time training steps of TASK in one process: fp32 eager, bf16 autocast and bf16 autocast + torch.compile, "
    "each from the same initial weights and batches. Prints slices/s, the ratio to fp32 eager and peak memory "
    "as a Markdown table and a JSON line. Without --data a small phantom is generated in a temporary folder."
)


def add_bench_train_parser(benches) -> None:
    parser = benches.add_parser("train", help="training throughput and memory: fp32, bf16, bf16 + compile",
                                description=DESCRIPTION)
    parser.add_argument("task", metavar="TASK", help=f"one of {', '.join(TASKS)}")
    parser.add_argument("--data", type=Path, help="dataset folder or manifest.csv (default: a small generated phantom)")
    add_config_arguments(parser, "the task's demo config")
    add_device_argument(parser)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant (default: 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before them, compilation included "
                                                               "(default: 3)")
    parser.add_argument("--input-size", type=int, help="network input size in pixels (default: the config's)")
    parser.add_argument("--compile-limit", type=float, default=600.0,
                        help="seconds torch.compile's warm-up may take before its row is skipped (default: 600)")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.steps < 1 or args.warmup < 1:
        raise InputError(f"--steps {args.steps} --warmup {args.warmup}: both must be at least 1")
    report = run_bench(args.task, args.data, args.config, args.overrides, args.device, args.steps, args.warmup,
                       args.input_size, args.compile_limit)
    print(format_report(report))
    print(json.dumps(report))
    return 0


def image_tensor(batch):
    """The network input of one batch: its first floating-point (.., C, H, W) tensor."""
    import torch

    parts = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else [batch]
    for part in parts:
        if isinstance(part, torch.Tensor) and part.is_floating_point() and part.dim() >= 4:
            return part
    raise InputError("the task's batches hold no image tensor (.., C, H, W) to count slices in")


def slices_in(batch) -> int:
    """Images the network sees in one batch: a bag (B, 8, C, H, W) counts B x 8."""
    return math.prod(image_tensor(batch).shape[:-3])


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise TimeoutError in the block after ``seconds``, where SIGALRM exists (not on Windows, nor off the main thread)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"compilation and warm-up ran over --compile-limit {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)  # macOS reports bytes, Linux KiB


def time_variant(task, config: dict, batches: list, device, warmup: int, compile_limit: float) -> dict:
    """Warm up, then time ``len(batches) - warmup`` training steps of a fresh model built from ``config``."""
    import torch

    cuda = device.type == "cuda"
    model, optimizer = build_model_and_optimizer(task, config, device)
    train_model = torch.compile(model) if config["compile"] else model

    def step(batch):
        train_step(task, train_model, batch, config, device)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    with time_limit(compile_limit) if config["compile"] else contextlib.nullcontext():
        for batch in batches[:warmup]:
            step(batch)
        if cuda:
            torch.cuda.synchronize(device)
    warmup_s = time.perf_counter() - started
    started = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else peak_rss_mib() - rss_before
    timed_slices = sum(slices_in(b) for b in batches[warmup:])
    return {"slices_per_s": round(timed_slices / seconds, 2), "seconds": round(seconds, 3),
            "warmup_s": round(warmup_s, 2), "peak_mib": round(peak, 1)}


def bench_config(task, config_file: Optional[str], overrides: list[str], input_size: Optional[int]) -> dict:
    if input_size is not None:
        # Tasks name their input size differently (cxr-lungs "size", the CT tasks "input_size").
        key = next((k for k in ("input_size", "size") if k in task_defaults(task)["preprocess"]), None)
        if key is None:
            raise InputError(f"task '{task.name}' has no input size to set; leave out --input-size")
        overrides = [*overrides, f"preprocess.{key}={input_size}"]
    return build_config(task, config_file or default_config_file(f"{task.name}.demo")
                        or default_config_file(task.name), overrides)


def run_bench(task_name: str, data: Optional[Path] = None, config_file: Optional[str] = None, overrides=(),
              device: str = "auto", steps: int = 20, warmup: int = 3, input_size: Optional[int] = None,
              compile_limit: float = 600.0) -> dict:
    """Measure and return what ``covidweak bench train`` prints (see the module docstring)."""
    import torch

    task = get_task(task_name)
    config = bench_config(task, config_file, list(overrides), input_size)
    torch_device = resolve_device(device)
    with tempfile.TemporaryDirectory(prefix="covidweak-bench-") as scratch:
        if data is None:
            from ..phantom import PhantomConfig, generate_dataset

            params = dict(BENCH_PHANTOM)
            phantom = PhantomConfig(size=params.pop("size"), slices=params.pop("slices"))
            data = generate_dataset(Path(scratch), config=phantom, **params).parent
        records = load_records(data, config["data"]["max_studies"])
        # Only training steps are timed: every study trains; one stands in for the val split some tasks require.
        task.prepare(TaskData(splits={"train": records, "val": records[:1]}, root=Path(data)), config)
    source, _ = epoch_batches(task, config, 0, World(), torch_device)
    drawn = [batch for _, batch in zip(range(warmup + steps), source)]
    if not drawn:
        raise InputError(f"task '{task.name}' makes no training batch from this data; use more studies")
    # A shorter last batch would make torch.compile recompile inside the timed steps.
    full = [b for b in drawn if slices_in(b) == slices_in(drawn[0])]
    batches = [full[i % len(full)] for i in range(warmup + steps)]
    report = {"task": task.name, "device": str(torch_device), "steps": steps, "warmup": warmup,
              "slices_per_step": slices_in(batches[0]), "input_size": int(image_tensor(batches[0]).shape[-1]),
              "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "memory": "max_memory_allocated" if torch_device.type == "cuda" else "peak RSS rise", "variants": []}
    baseline = None
    for name, amp, compiled in VARIANTS:
        row = {"variant": name}
        if amp == "bf16" and torch_device.type == "cuda" and not torch.cuda.is_bf16_supported():
            row["skipped"] = f"{torch.cuda.get_device_name(torch_device)} has no bf16 support"
        else:
            try:
                row.update(time_variant(task, {**config, "amp": amp, "compile": compiled}, batches, torch_device,
                                        warmup, compile_limit))
            except Exception as error:
                if not compiled:
                    raise
                torch._dynamo.reset()  # drop the half-built graphs before the report
                reason = (str(error).strip().splitlines() or [""])[0][:200]
                row["skipped"] = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
        if "slices_per_s" in row:
            baseline = baseline or row["slices_per_s"]
            row["x_fp32_eager"] = round(row["slices_per_s"] / baseline, 2)
        report["variants"].append(row)
    return report


def format_report(report: dict) -> str:
    memory = "peak GPU memory (MiB)" if report["memory"] == "max_memory_allocated" else "peak RSS rise (MiB, CPU)"
    lines = [f"covidweak bench train {report['task']} on {report['device']}: {report['slices_per_step']} slices "
             f"per step at {report['input_size']} px, {report['steps']} timed steps after {report['warmup']} warm-up, "
             f"torch {report['torch']} ({report['torch_threads']} threads)", "",
             f"| variant | slices/s | vs fp32 eager | {memory} | warm-up s |", "|---|---:|---:|---:|---:|"]
    for row in report["variants"]:
        if "skipped" in row:
            lines.append(f"| {row['variant']} | skipped: {row['skipped'].replace('|', '/')} | | | |")
        else:
            lines.append(f"| {row['variant']} | {row['slices_per_s']:.1f} | {row['x_fp32_eager']:.2f}x | "
                         f"{row['peak_mib']:.0f} | {row['warmup_s']:.1f} |")
    return "\n".join(lines)
