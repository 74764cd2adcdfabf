#!/bin/bash
# Usage: ablate_nam.sh WORK INIT [STEPS]
# Fig. 3 of M-SEAM-NAM: NAM's thresholds and radius are *training* choices, so each point is its own
# M-SEAM-NAM run from the same bag-CAM pre-training INIT (a run folder or weight file of
# `covidweak train cam-pretrain --config cam-pretrain.mil`), scored on the held-out phantom
# WORK/test with `evaluate weakseg` at the inference T_fg of Table 1 (0.1). Training data:
# WORK/data/manifest.csv. T_fg runs at r = 5, r runs at T_fg = 0.1 (the paper's Table 1 setting).
set -uo pipefail
work=$1 init=$2 steps=${3:-400}
mkdir -p "$work/runs" "$work/models" "$work/reports"
one() {  # name t_fg radius
  python3 -m covidweak train mseamnam --data "$work/data/manifest.csv" --out "$work/runs/$1" --config mseamnam \
    --set params.init_from="$init" --set params.t_fg="$2" --set params.nam_radius="$3" --set max_steps="$steps" \
    --set amp=bf16 ${EXTRA:-}
  python3 -m covidweak export "$work/runs/$1" --name "ablate-$1" --half --models-dir "$work/models" --overwrite
  python3 -m covidweak evaluate weakseg --data "$work/test" --methods mseamnam --weights "$work/models/ablate-$1.pt" \
    --split all --out "$work/reports/$1.json" --overwrite
}
for t in 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8; do one "tfg$t-r5" "$t" 5; done
for r in 3 4 6 7; do one "tfg0.1-r$r" 0.1 "$r"; done
