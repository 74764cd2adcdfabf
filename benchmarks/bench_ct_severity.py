"""Time per CT of the CT severity score (from a given segmentation) and of the diagnosis, each as a ratio
against a baseline measured in the same process.

- severity: :func:`covidweak.severity.ct.ct_severity` on a lesion mask and lung labels (zones, six-zone
  table, score), against :func:`covidweak.weakseg.lesions.involvement`, the per-zone involvement that
  ``covidweak segment`` already computes for summary.json on the same arrays;
- diagnosis: :func:`covidweak.diagnosis.predict.diagnose_ct` with given lungs, against
  :func:`covidweak.weakseg.infer.segment_ct` with the same lungs and the shipped ``mscam-light`` (the same
  backbone family run on the same lung slices), so the ratio says what diagnosis adds to a segmentation.

CTs are studies of a phantom dataset (reference lesion mask as the "given segmentation").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ct_severity.py --data /tmp/ph_train [--studies 3] \
        [--weights diagnosis-light] [--repeats 3]
"""

from __future__ import annotations

import argparse

import numpy as np
import SimpleITK as sitk

from covidweak.datasets import open_dataset
from covidweak.diagnosis.model import METHOD
from covidweak.diagnosis.predict import diagnose_ct
from covidweak.io import read_ct, read_image
from covidweak.models import load_weights
from covidweak.severity.ct import ct_severity
from covidweak.weakseg.infer import segment_ct
from covidweak.weakseg.lesions import involvement
from timing import best_of  # benchmarks/timing.py, next to this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="phantom dataset folder")
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--weights", default="diagnosis-light")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    diagnosis = load_weights(args.weights, method=METHOD)
    segmenter = load_weights("mscam-light", method="mscam")
    rows = []
    for record in open_dataset(args.data)[: args.studies]:
        ct = read_ct(record.ct_path)
        lungs = sitk.Cast(read_image(record.lung_mask_path), sitk.sitkUInt8)
        lesion = sitk.Cast(read_image(record.lesion_mask_path) > 0, sitk.sitkUInt8)
        lesion.CopyInformation(ct)
        mask = sitk.GetArrayFromImage(lesion)
        row = {"study": record.study_id, "size": ct.GetSize()}
        row["involvement_s"] = best_of(args.repeats, lambda: involvement(lesion, lungs))
        row["severity_s"] = best_of(args.repeats, lambda: ct_severity(mask, lungs))
        row["segment_s"] = best_of(args.repeats, lambda: segment_ct(ct, segmenter, lungs=lungs, device="cpu"))
        row["diagnose_s"] = best_of(args.repeats, lambda: diagnose_ct(ct, diagnosis, lungs=lungs, device="cpu"))
        rows.append(row)
        print(f"{row['study']} {row['size']}: severity {row['severity_s']:.3f} s "
              f"({row['severity_s'] / row['involvement_s']:.2f}x involvement {row['involvement_s']:.3f} s); "
              f"diagnose {row['diagnose_s']:.3f} s ({row['diagnose_s'] / row['segment_s']:.2f}x segment_ct "
              f"{row['segment_s']:.3f} s)")
    mean = {key: float(np.mean([r[key] for r in rows])) for key in ("involvement_s", "severity_s", "segment_s", "diagnose_s")}
    print(f"mean over {len(rows)} CTs: severity {mean['severity_s']:.3f} s = "
          f"{mean['severity_s'] / mean['involvement_s']:.2f}x involvement; diagnose {mean['diagnose_s']:.3f} s = "
          f"{mean['diagnose_s'] / mean['segment_s']:.2f}x segment_ct (mscam-light)")


if __name__ == "__main__":
    main()
