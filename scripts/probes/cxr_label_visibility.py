"""How visible are the phantom radiograph's positive severity zones?

Usage: python scripts/probes/cxr_label_visibility.py [LESION_SCALE] [SIZE]

For 16 phantom patients (covid and cap, 2 studies each) the radiograph is rendered twice, with
the lesions and as the same patient's normal study (same anatomy and scanner noise), so their
difference is the lesions' own contrast. Per zone it prints, for the zones the label calls
positive, that contrast relative to the lung texture (standard deviation of the high-passed
lesion-free radiograph inside the lungs). With generator 1.0's labels (any projected lesion voxel)
a quarter of the positive zones stayed below one texture standard deviation; docs/status.md.
It also prints the radiograph contrast per mm of extra water-equivalent lesion thickness (from the
two CTs), the calibration behind ``covidweak.phantom.drr.VISIBLE_THICKNESS_MM``.
"""

import sys

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from covidweak import zones
from covidweak.phantom.config import PhantomConfig
from covidweak.phantom.drr import lesion_thickness
from covidweak.phantom.study import generate_study

TEXTURE_SIGMA_PX = 3.0
"""High-pass scale that keeps the vessels and septa a lesion must stand out from."""


def texture_contrast(study, normal) -> np.ndarray:
    """(rows, x) lesion contrast of the radiograph in lung-texture standard deviations."""
    with_lesions, without = (sitk.GetArrayFromImage(s.cxr) for s in (study, normal))
    lungs = sitk.GetArrayFromImage(study.cxr_lungs)
    texture = (without - ndimage.gaussian_filter(without, TEXTURE_SIGMA_PX))[lungs > 0].std()
    return (with_lesions - without) / texture


def contrast_per_mm(study, normal) -> float:
    """Median radiograph contrast (texture standard deviations) per mm of lesion water equivalent."""
    cts = [sitk.GetArrayFromImage(s.ct).astype(np.float32) for s in (normal, study)]
    thickness = lesion_thickness(*cts, study.ct.GetSpacing())
    inside = thickness > 0.5
    return float(np.median(texture_contrast(study, normal)[inside] / thickness[inside]))


def zone_rows(study, normal) -> list[tuple[int, float, float]]:
    """(label, max contrast / texture, fraction of pixels above texture) per lung zone."""
    contrast = texture_contrast(study, normal)
    lungs = sitk.GetArrayFromImage(study.cxr_lungs)
    zone_map, labels = zones.zone_map_2d(lungs), np.array(study.meta["severity_array"])
    rows = []
    for col, lung in enumerate(zones.LUNG_LABELS):
        for row in range(3):
            inside = (lungs == lung) & (zone_map == row + 1)
            if inside.any():
                rows.append((int(labels[row, col]), float(contrast[inside].max()), float((contrast[inside] > 1).mean())))
    return rows


def main() -> None:
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    config = PhantomConfig(size=size, slices=32 if size <= 128 else 64, lesion_scale=scale)
    rows, per_mm = [], []
    for seed in range(9000, 9016):
        for index in (0, 1):
            pattern = "covid" if seed % 2 == 0 else "cap"
            study, normal = generate_study(seed, index, pattern, config), generate_study(seed, index, "normal", config)
            rows += zone_rows(study, normal)
            per_mm.append(contrast_per_mm(study, normal))
    table = np.array(rows)
    positive, negative = table[table[:, 0] == 1], table[table[:, 0] == 0]
    print(f"zones: {len(positive)} positive, {len(negative)} negative; contrast per mm of lesion water equivalent: "
          f"median {np.median(per_mm):.3f}, 10-90th percentile {np.percentile(per_mm, [10, 90]).round(3)}")
    for name, column in (("max contrast / texture", 1), ("fraction of pixels above texture", 2)):
        print(f"{name}: positive zones 10/25/50/90th percentile {np.percentile(positive[:, column], [10, 25, 50, 90]).round(3)}, "
              f"negative zones max {negative[:, column].max():.3f}")


if __name__ == "__main__":
    main()
