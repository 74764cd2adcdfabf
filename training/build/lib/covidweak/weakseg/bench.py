"""``covidweak bench segment``: time and memory of ``covidweak segment``, file read to outputs written.

A covid phantom CT of the requested size (an adult chest: a 358 mm field of view, 300 mm of slices up
to 5 mm thick; :func:`phantom_ct`) is written to a temporary file; then, per device (CPU and, when
present, the GPU), exactly what ``covidweak segment`` does after loading the network: read the file
(:func:`~covidweak.io.read_ct`), :func:`~covidweak.weakseg.infer.segment_ct` with no lungs given (so the
classical lung segmentation is timed), and :func:`~covidweak.weakseg.outputs.write_outputs`. The time
is split by stage: read, lungs, network, tables, write. Also measured: the preprocessing alone (HU
window + resize of every lung slice, batch by batch: the baseline) and re-thresholding the probability
map (what moving the T_fg slider costs). Times are given in seconds and as a ratio to the baseline;
peak RSS (``resource.getrusage``, a process-wide high-water mark) in MiB and as a ratio to the CT's
float32 size.
"""

from __future__ import annotations

import resource
import time
from typing import Optional

import numpy as np
import SimpleITK as sitk

from .infer import DEFAULT_BATCH_SIZE, T_FG, batches, lung_slices, segment_ct
from .prepare import describe_input


def synthetic_chest(size: int = 512, slices: int = 300, spacing_mm: float = 0.7, thickness_mm: float = 1.0):
    """A chest-like CT (body ellipse, two lung ellipsoids, a dense patch) and its lung labels.

    Returns (ct float32 HU, lungs uint8 0/1/2), both (size, size, slices) voxels, LPS identity direction.
    """
    y, x = np.ogrid[:size, :size]
    cy = cx = size / 2
    body = ((y - cy) / (0.38 * size)) ** 2 + ((x - cx) / (0.45 * size)) ** 2 <= 1
    hu = np.empty((slices, size, size), dtype=np.float32)
    lungs = np.zeros((slices, size, size), dtype=np.uint8)
    # Slice by slice, so building the test volume does not raise the peak memory being measured.
    for z in range(slices):
        height = ((z - slices / 2) / (0.45 * slices)) ** 2
        for label, sign in ((1, -1), (2, 1)):  # LPS: image x grows to the patient's left
            inside = ((y - cy) / (0.28 * size)) ** 2 + ((x - cx - sign * 0.2 * size) / (0.15 * size)) ** 2 + height <= 1
            lungs[z][inside] = label
        hu[z] = np.where(lungs[z] > 0, -850.0, np.where(body, 40.0, -1000.0))
    hu[slices // 2: slices // 2 + 10, int(cy): int(cy) + 30, int(cx - 0.25 * size): int(cx - 0.25 * size) + 30] = -400.0
    ct, labels = sitk.GetImageFromArray(hu), sitk.GetImageFromArray(lungs)
    del hu, lungs
    for image in (ct, labels):
        image.SetSpacing((spacing_mm, spacing_mm, thickness_mm))
    return ct, labels


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def preprocess_seconds(ct: sitk.Image, lungs: sitk.Image, preprocess: dict, batch_size: int) -> float:
    """The baseline: HU window + resize of every lung slice, batch by batch, as segment_ct does."""
    from ..lungs.geometry import to_canonical
    from .prepare import prepare_stacks

    start = time.perf_counter()
    canonical, canonical_lungs = to_canonical(ct), to_canonical(lungs)  # the views below live as long as these
    hu = sitk.GetArrayViewFromImage(canonical)
    for centres in batches(lung_slices(sitk.GetArrayViewFromImage(canonical_lungs)), batch_size):
        prepare_stacks(hu, centres, preprocess)
    return time.perf_counter() - start


def bench_model(weights: Optional[str], method: str):
    """The LoadedModel to time: ``weights``, else the shipped ``<method>-light``, else a random-init light one."""
    from ..errors import ModelError
    from ..models import LoadedModel, build_model, load_weights
    from .prepare import DEFAULT_PREPROCESS

    try:
        return load_weights(weights or f"{method}-light", method=method), "trained"
    except ModelError:
        if weights:
            raise
    arch = {"backbone": "light"}
    return LoadedModel(model=build_model(method, arch).eval(), method=method, arch=arch, preprocess=dict(DEFAULT_PREPROCESS),
                       sha256="", path=None, info={}), "random-init (no shipped weights)"


BENCH_FOV_MM = 358.4
"""In-plane field of view of the benchmark CT: 512 pixels of 0.7 mm, an adult chest at any --size."""

BENCH_COVERAGE_MM = 300.0
"""Head-to-foot coverage of the benchmark CT (300 slices of 1 mm), kept while slices stay <= 5 mm thick."""

MAX_THICKNESS_MM = 5.0
"""Thickest slices the benchmark uses: the thickest of routine chest CT reconstructions."""


def phantom_ct(size: int, slices: int):
    """A covid phantom study (:mod:`covidweak.phantom`) with ``size`` x ``size`` x ``slices`` voxels: spacing
    :data:`BENCH_FOV_MM` / ``size`` in-plane and :data:`BENCH_COVERAGE_MM` / ``slices`` (at most
    :data:`MAX_THICKNESS_MM`) between slices. Returns the study (``.ct`` float32 HU, ``.lungs`` uint8 0/1/2)."""
    from ..phantom import PhantomConfig, generate_study

    pixel = BENCH_FOV_MM / size
    thickness = min(MAX_THICKNESS_MM, BENCH_COVERAGE_MM / slices)
    return generate_study(1, 0, "covid", PhantomConfig(size=size, slices=slices, spacing=(pixel, pixel, thickness)))


def time_segment_command(ct_path, out_dir, model, batch_size: int, device: str):
    """``covidweak segment`` after the network is loaded: read ``ct_path``, segment (lungs included), write
    ``out_dir``. Returns (seconds per stage: read, lungs, network, tables, write; the SegmentResult)."""
    from ..io import read_ct
    from .outputs import write_outputs

    start = time.perf_counter()
    ct = read_ct(ct_path)
    read_done = time.perf_counter()
    result = segment_ct(ct, model, batch_size=batch_size, device=device)
    segment_done = time.perf_counter()
    write_outputs(result, out_dir)
    write_done = time.perf_counter()
    inner = result.summary["stage_seconds"]
    stages = {"read_s": read_done - start, "lungs_s": inner["lungs_s"], "network_s": inner["probability_s"],
              "tables_s": inner["tables_s"], "write_s": write_done - segment_done}
    return {name: round(seconds, 3) for name, seconds in stages.items()}, result


def run_bench(size: int = 512, slices: int = 300, method: str = "mseamnam", weights: Optional[str] = None,
              batch_size: int = DEFAULT_BATCH_SIZE, devices: Optional[list[str]] = None) -> dict:
    """Measure and return the numbers printed by ``covidweak bench segment`` (see the module docstring)."""
    import tempfile
    from pathlib import Path

    import torch

    model, origin = bench_model(weights, method)
    study = phantom_ct(size, slices)
    ct_mib = size * size * slices * 4 / 2**20
    lung_count = len(lung_slices(sitk.GetArrayViewFromImage(study.lungs)))
    baseline = preprocess_seconds(study.ct, study.lungs, model.preprocess, batch_size)
    report = {"size": size, "slices": slices, "spacing_mm": [round(s, 3) for s in study.ct.GetSpacing()],
              "lung_slices": lung_count, "method": method, "weights": origin,
              "input": describe_input(model.preprocess), "torch_threads": torch.get_num_threads(),
              "baseline_preprocess_s": round(baseline, 3), "ct_mib": round(ct_mib, 1), "runs": []}
    devices = devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    result = None
    with tempfile.TemporaryDirectory(prefix="covidweak-bench-") as work:
        ct_path = Path(work) / "ct.nii.gz"
        sitk.WriteImage(study.ct, str(ct_path))
        del study
        for device in devices:
            start = time.perf_counter()
            stages, result = time_segment_command(ct_path, Path(work) / f"out-{device}", model, batch_size, device)
            seconds = time.perf_counter() - start
            peak = peak_rss_mib()
            report["runs"].append({"device": device, "seconds": round(seconds, 3), "x_baseline": round(seconds / baseline, 2),
                                   "stage_seconds": stages,
                                   "seconds_per_lung_slice": round(seconds / max(lung_count, 1), 3),
                                   "peak_rss_mib": round(peak, 1), "peak_x_ct": round(peak / ct_mib, 2)})
    prob = sitk.GetArrayViewFromImage(result.probability)
    start = time.perf_counter()
    mask = prob > T_FG
    threshold_s = time.perf_counter() - start
    report["threshold_ms"] = round(threshold_s * 1000, 2)
    report["threshold_x_baseline"] = round(threshold_s / baseline, 4)
    report["mask_voxels"] = int(np.count_nonzero(mask))
    return report


def format_report(report: dict) -> str:
    spacing = "x".join(f"{s:g}" for s in report["spacing_mm"])
    lines = [f"covidweak bench segment: {report['size']}x{report['size']}x{report['slices']} phantom CT "
             f"({spacing} mm, {report['lung_slices']} lung slices), {report['method']} {report['weights']}, "
             f"input {report['input']}, {report['torch_threads']} torch threads",
             f"baseline (HU window + resize only): {report['baseline_preprocess_s']:.2f} s"]
    for run in report["runs"]:
        lines.append(f"{run['device']}: covidweak segment, file read to outputs written, {run['seconds']:.1f} s "
                     f"({run['x_baseline']:.1f}x baseline, {run['seconds_per_lung_slice']:.3f} s per lung slice); "
                     f"peak RSS {run['peak_rss_mib']:.0f} MiB ({run['peak_x_ct']:.1f}x the {report['ct_mib']:.0f} MiB CT)")
        stages = run["stage_seconds"]
        lines.append(f"  read {stages['read_s']:.2f} s, lungs {stages['lungs_s']:.2f} s, network (with canonical axes) "
                     f"{stages['network_s']:.2f} s, threshold + lesion table + involvement {stages['tables_s']:.2f} s, "
                     f"write {stages['write_s']:.2f} s")
    lines.append(f"re-threshold (numpy compare): {report['threshold_ms']:.1f} ms "
                 f"({report['threshold_x_baseline']:.4f}x baseline)")
    return "\n".join(lines)
