#!/usr/bin/env bash
# Usage: scripts/table1.sh WORK [LESION_SCALE]
#
# Table 1 of M-SEAM-NAM at the light configuration, every method retrained with the current
# code under one recipe, on a fresh machine or the GPU one (--device auto):
#   data   the 24-patient x 2-study training phantom (seed 100) and the 10 held-out Table 1
#          patients (seed 7000), both at LESION_SCALE (default 1);
#   train  CAM pre-training (the CAM row and SEAM's start), multi-scale CAM, SEAM and SEAM + NAM
#          from the CAM, bag pre-training with Eq. 7 (8 bags per batch) and M-SEAM-NAM from it,
#          the U-Net on the sparse masks; each a .light config with the lengths below;
#   score  `covidweak evaluate weakseg --split all` of the six files -> WORK/table1.json.
# Lengths can be raised through the environment (CAM_EPOCHS, SEAM_STEPS, BAG_STEPS, MSEAM_STEPS,
# UNET_EPOCHS, MSCAM_EPOCHS), and INPUT_SIZE replaces the light configs' 128 (the paper: 448).
# Everything is written under WORK; nothing in the repository changes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$1 scale=${2:-1}
read -ra cw <<< "${COVIDWEAK:-$root/.venv/bin/covidweak}"  # e.g. COVIDWEAK="python3 -m covidweak" on the GPU machine
mkdir -p "$work/models"

stage() { echo "[$(date +%T)] $*"; }
size_args=()
if [ -n "${INPUT_SIZE:-}" ]; then size_args=(--set preprocess.input_size="$INPUT_SIZE"); fi
train() {  # train TASK NAME ARGS...: one run folder per NAME, skipped when its weights exist
  local task=$1 name=$2; shift 2
  [ -f "$work/models/$name.pt" ] && return 0
  stage "train $name"
  rm -rf "$work/runs/$name"
  "${cw[@]}" train "$task" --data "$work/train" --out "$work/runs/$name" "$@" "${size_args[@]}" > "$work/runs-$name.log"
  "${cw[@]}" export "$work/runs/$name" --name "$name" --checkpoint last --models-dir "$work/models" --overwrite | tail -1
}

[ -f "$work/train/manifest.csv" ] || "${cw[@]}" phantom --out "$work/train" --patients 24 --studies-per-patient 2 --seed 100 --lesion-scale "$scale"
[ -f "$work/test/manifest.csv" ] || "${cw[@]}" phantom --out "$work/test" --patients 10 --studies-per-patient 1 --seed 7000 --lesion-scale "$scale"

train cam-pretrain cam --config cam-pretrain.light --set epochs="${CAM_EPOCHS:-16}"
train mscam mscam --config mscam.light --set epochs="${MSCAM_EPOCHS:-3}"
# These four are measured in updates: max_steps sets the length (and the linear decline), epochs only bounds it.
by_steps=(--set epochs=1000)
train seam seam --config seam.light --set params.init_from="$work/models/cam.pt" \
  --set params.equivariance=normalised --set max_steps="${SEAM_STEPS:-210}" "${by_steps[@]}"
train seam-nam seamnam --config seam-nam.light --set params.init_from="$work/models/cam.pt" \
  --set params.equivariance=normalised --set max_steps="${SEAM_STEPS:-210}" "${by_steps[@]}"
train cam-pretrain bagcam --config cam-pretrain.light --set params.mil=true --set batch_size=64 \
  --set max_steps="${BAG_STEPS:-180}" "${by_steps[@]}"
train mseamnam mseamnam --config mseamnam.light --set params.init_from="$work/models/bagcam.pt" \
  --set params.equivariance=normalised --set batch_size=64 --set accumulate=1 --set max_steps="${MSEAM_STEPS:-40}" \
  "${by_steps[@]}"
train unet unet --config unet.light --set epochs="${UNET_EPOCHS:-16}"

stage "evaluate"
m="$work/models"
"${cw[@]}" evaluate weakseg --data "$work/test" --split all --overwrite --out "$work/table1.json" \
  --methods cam mscam seam seamnam mseamnam unet \
  --weights "$m/cam.pt" "$m/mscam.pt" "$m/seam.pt" "$m/seamnam.pt" "$m/mseamnam.pt" "$m/unet.pt"
stage "done: $work/table1.json"
