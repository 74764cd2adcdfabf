#!/bin/bash
# Usage: train_weakseg.sh WORK CAM_SECONDS MSEAM_SECONDS [PATIENTS_PER_PROC PROCS EPOCHS_CAM EPOCHS_MSEAM]
# M-SEAM-NAM on one GPU: phantom (256x256x64), CAM pre-training (Sect. 2.1), then M-SEAM-NAM
# initialised from it, each cut at a wall-clock budget (the best epoch by validation Dice is kept).
set -uo pipefail
work=$1 cam_s=$2 mseam_s=$3 each=${4:-15} procs=${5:-8} e_cam=${6:-12} e_mseam=${7:-16}
size=${SIZE:-256} slices=${SLICES:-64}
mkdir -p "$work"
date +%T; bash "$(dirname "$0")/phantoms.sh" "$work/data" "$procs" "$each" 100 "$size" "$slices"
date +%T
timeout -s INT "$cam_s" python3 -m covidweak train cam-pretrain --data "$work/data/manifest.csv" --out "$work/runs/cam" \
  --config cam-pretrain.light --set preprocess.input_size="$size" --set amp=bf16 --set epochs="$e_cam" \
  --set batch_size=16 --set keep_last=1 ${EXTRA_CAM:-}
date +%T
timeout -s INT "$mseam_s" python3 -m covidweak train mseamnam --data "$work/data/manifest.csv" --out "$work/runs/mseamnam" \
  --config mseamnam.light --set params.init_from="$work/runs/cam" --set preprocess.input_size="$size" --set amp=bf16 \
  --set epochs="$e_mseam" --set batch_size=16 --set accumulate=4 --set keep_last=1 ${EXTRA_MSEAM:-}
date +%T
