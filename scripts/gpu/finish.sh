#!/bin/bash
# Usage: finish.sh WORK OUT
# After train_weakseg.sh / train_severity.sh: export the weights, evaluate them on held-out phantoms
# (docs/status.md's Table 1 patients, seed 7000, and the severity test patients, seed 8), time inference
# on the GPU, and pack weights and reports into OUT.
set -uo pipefail
work=$1 out=$2
models=$work/models
mkdir -p "$models" "$work/reports"
py="python3 -m covidweak"
$py export "$work/seg/runs/mseamnam" --name mseamnam-gpu --half --models-dir "$models" --overwrite
$py export "$work/seg/runs/cam" --name cam-gpu --half --models-dir "$models" --overwrite
$py export "$work/sev/runs/severity" --name severity-gpu --half --models-dir "$models" --overwrite --checkpoint last
$py evaluate weakseg --data "$work/test_seg" --split all --methods mseamnam cam \
  --weights "$models/mseamnam-gpu.pt" "$models/cam-gpu.pt" --out "$work/reports/eval_weakseg.json" --overwrite
$py evaluate severity --data "$work/test_sev" --split all --weights "$models/severity-gpu.pt" \
  --labels "supervised, all labels (GPU)" --out "$work/reports/eval_severity.json" --overwrite
$py bench segment --devices cuda --weights "$models/mseamnam-gpu.pt" | tee "$work/reports/bench_segment.txt"
python3 benchmarks/bench_severity.py --data "$work/test_sev" --weights "$models/severity-gpu.pt" | tee "$work/reports/bench_severity.txt"
for run in seg/runs/cam seg/runs/mseamnam sev/runs/embed sev/runs/severity; do
  mkdir -p "$work/reports/$run"; cp "$work/$run"/{config.yaml,metrics.csv,split.json} "$work/reports/$run/" 2>/dev/null
done
cp "$work"/*.log "$work/reports/"
tar -czf "$out/reports.tgz" -C "$work" reports
cp "$models"/*.pt "$models/models.json" "$out/"
cp "$work/sev/models/cxr-embed-gpu.pt" "$out/"; cp "$work/sev/models/models.json" "$out/embed-models.json"
ls -la "$out"
