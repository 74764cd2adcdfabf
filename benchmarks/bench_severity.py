"""Time per chest radiograph of Kim et al.'s severity pipeline, as a ratio against a baseline
measured in the same process.

- baseline: :func:`covidweak.severity.cxr_preprocess.preprocess_cxr` alone (resize, 3x3 blur,
  histogram equalisation, normalisation) on the same radiograph;
- pipeline: :func:`covidweak.severity.cxr_infer.run_cxr` (lung network, connected components,
  DenseNet features, ViT map head, ROI max pooling) with the given weights, on CPU and, when a
  CUDA GPU is visible, on the GPU too.

Radiographs are the DRRs of a phantom dataset.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_severity.py --data /tmp/ph_train [--studies 3] \
        [--weights severity-light] [--lungs-weights cxr-lungs-light] [--repeats 3]
"""

from __future__ import annotations

import argparse

import SimpleITK as sitk

from covidweak.datasets import open_dataset
from covidweak.models import load_weights
from covidweak.severity.cxr_infer import radiograph_array, run_cxr
from covidweak.severity.cxr_preprocess import preprocess_cxr
from timing import best_of  # benchmarks/timing.py, next to this script


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="phantom dataset with cxr.nii.gz per study")
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--weights", default="severity-light")
    parser.add_argument("--lungs-weights", default="cxr-lungs-light")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    records = [r for r in open_dataset(args.data) if "cxr_path" in r.extra][:args.studies]
    images = [sitk.ReadImage(str(r.extra["cxr_path"])) for r in records]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        severity = load_weights(args.weights, method="severity", device=device)
        lungs = load_weights(args.lungs_weights, method="cxr-lungs", device=device)
        size = int(severity.preprocess["input_size"])
        run_cxr(images[0], severity, lungs, device)  # warm-up: first-call allocations and kernel choice
        for record, image in zip(records, images):
            radiograph = radiograph_array(image)
            baseline = best_of(args.repeats, lambda: preprocess_cxr(radiograph, size))
            pipeline = best_of(args.repeats, lambda: run_cxr(image, severity, lungs, device))
            print(f"{device} {record.study_id} {radiograph.shape}: preprocessing {baseline * 1000:.1f} ms, "
                  f"pipeline {pipeline * 1000:.1f} ms, ratio {pipeline / baseline:.1f}x")


if __name__ == "__main__":
    main()
