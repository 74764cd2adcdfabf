#!/bin/bash
# Usage: phantoms.sh OUT PROCS PATIENTS_EACH SEED0 SIZE SLICES
# Generate PROCS phantom datasets in parallel (seeds SEED0..SEED0+PROCS-1; patient ids never
# collide because they are seed * 10000 + index) and merge their manifests into OUT/manifest.csv.
set -euo pipefail
out=$1 procs=$2 each=$3 seed0=$4 size=$5 slices=$6
mkdir -p "$out"
for ((i = 0; i < procs; i++)); do
  python3 -m covidweak phantom --out "$out/s$i" --patients "$each" --studies-per-patient 2 \
    --seed $((seed0 + i)) --size "$size" --slices "$slices" >/dev/null &
done
wait
python3 - "$out" "$procs" <<'PY'
import csv, sys
from pathlib import Path
out, procs = Path(sys.argv[1]), int(sys.argv[2])
rows, fields = [], None
for i in range(procs):
    with open(out / f"s{i}" / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        for row in reader:
            for key in ("ct", "lungs", "lesions", "cxr", "cxr_lungs", "meta"):
                if row.get(key):
                    row[key] = f"s{i}/{row[key]}"
            rows.append(row)
with open(out / "manifest.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
print(f"{out}: {len(rows)} studies")
PY
