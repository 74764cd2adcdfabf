"""Peak memory of each pipeline stage on a full-size synthetic chest CT, as a ratio to the CT's own size.

A 512x512x1000 chest-like CT (int16 HU, built slice by slice with
:func:`covidweak.weakseg.bench.synthetic_chest`) is written once to an
uncompressed NIfTI file. Each stage then runs in its own child process, so one
stage's high-water mark cannot hide another's; the child reports its peak
resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``):

- ``read``: :func:`covidweak.io.read_ct` only (the CT in memory as float32: the baseline);
- ``lungs``: read + :func:`covidweak.lungs.segment_lungs`;
- ``segment``: read + given lungs + :func:`covidweak.weakseg.infer.segment_ct` with the shipped
  ``mseamnam-light`` at its trained input size, on CPU;
- ``severity``: read lungs + the segment stage's lesion mask + :func:`covidweak.severity.ct.ct_severity`.

Each stage's peak is printed in MiB, as a ratio to the CT's int16 size (how
scanners store it) and to the ``read`` stage's peak (the same-machine baseline).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_memory.py [--slices 1000] [--size 512] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("read", "lungs", "segment", "severity")


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_ct(work: Path, size: int, slices: int) -> None:
    """Write ct.nii (int16 HU) and reference lungs.nii into ``work`` (in the parent, before any stage runs)."""
    import SimpleITK as sitk

    from covidweak.weakseg.bench import synthetic_chest

    ct, lungs = synthetic_chest(size, slices)
    sitk.WriteImage(sitk.Cast(ct, sitk.sitkInt16), str(work / "ct.nii"), useCompression=False)
    sitk.WriteImage(lungs, str(work / "lungs_reference.nii"), useCompression=False)


def run_stage(stage: str, work: Path) -> dict:
    """The body of one child process: do ``stage`` on the files in ``work`` and return what it measured."""
    import SimpleITK as sitk

    from covidweak.io import read_ct, read_image

    start = time.perf_counter()
    info = {}
    if stage == "read":
        ct = read_ct(work / "ct.nii")
        info["voxels"] = ct.GetNumberOfPixels()
    elif stage == "lungs":
        from covidweak.lungs import segment_lungs

        lungs = segment_lungs(read_ct(work / "ct.nii"))
        sitk.WriteImage(lungs, str(work / "lungs.nii"), useCompression=False)
    elif stage == "segment":
        from covidweak.models import load_weights
        from covidweak.weakseg.infer import segment_ct

        model = load_weights("mseamnam-light", method="mseamnam", device="cpu")
        info["input_size"] = int(model.preprocess.get("input_size", 0))
        lungs = read_image(work / "lungs.nii")
        result = segment_ct(read_ct(work / "ct.nii"), model, lungs=lungs, device="cpu")
        sitk.WriteImage(result.mask, str(work / "lesions.nii"), useCompression=False)
    elif stage == "severity":
        from covidweak.severity.ct import ct_severity

        lungs = read_image(work / "lungs.nii")
        mask = sitk.GetArrayViewFromImage(read_image(work / "lesions.nii"))
        fields, _ = ct_severity(mask, lungs)
        info["total_score"] = fields["total_score"]
    info.update(stage=stage, seconds=round(time.perf_counter() - start, 1), peak_rss_mib=round(peak_rss_mib(), 1))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=1000)
    parser.add_argument("--work", help="folder for the CT and stage outputs (default: a new temporary folder)")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)  # set by the parent for each child
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(run_stage(args.stage, Path(args.work))), flush=True)
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="covidweak-bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    make_ct(work, args.size, args.slices)
    ct_int16_mib = args.size * args.size * args.slices * 2 / 2**20
    print(f"bench_memory: {args.size}x{args.size}x{args.slices} CT, int16 {ct_int16_mib:.0f} MiB, "
          f"float32 {2 * ct_int16_mib:.0f} MiB; one child process per stage", flush=True)
    baseline = None
    for stage in STAGES:
        done = subprocess.run([sys.executable, __file__, "--stage", stage, "--work", str(work)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{stage:9s} failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}", flush=True)
            break
        info = json.loads(done.stdout.strip().splitlines()[-1])
        peak = info["peak_rss_mib"]
        baseline = baseline or peak
        extra = {k: v for k, v in info.items() if k not in ("stage", "seconds", "peak_rss_mib")}
        print(f"{stage:9s} peak RSS {peak:8.0f} MiB = {peak / ct_int16_mib:5.2f} x CT int16 = "
              f"{peak / baseline:5.2f} x read stage; {info['seconds']:7.1f} s {extra or ''}", flush=True)


if __name__ == "__main__":
    main()
