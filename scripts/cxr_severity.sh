#!/usr/bin/env bash
# Usage: scripts/cxr_severity.sh WORK
#
# Kim et al.'s chest X-ray severity at one physical scale (issue 17), trained and scored on this CPU:
#   data   a size-varied cohort of the default phantom (generator 1.1 labels: visible opacities only),
#          150 patients at each of 160²×40, 208²×52, 256²×64, 304²×76 and 352²×88 (seeds 61000-65000),
#          two studies each (1,260 training radiographs); the phantom's anatomy scales with its field of
#          view, so the sizes are chests of 224-493 mm. Three test cohorts of 50 patients, one study each,
#          at 160²×40 (seed 66000), 256²×64 (67000) and 352²×88 (68000);
#   train  cxr-embed.box (F, started from the shipped whole-image F cxr-embed-light) for 3 epochs (about
#          7 minutes each beside another training; constant learning rate), then severity.box on that
#          frozen F (24 epochs of 50 updates, about 10 minutes); both split 84/16 by patient and keep
#          their checkpoints on validation only;
#   score  `covidweak evaluate severity` on each test cohort, the shipped whole-image severity-light
#          beside the new file -> WORK/eval/severity-<cohort>.json/.md.
# A stage whose output exists is skipped, so the script resumes after an interruption.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$1
read -ra cw <<< "${COVIDWEAK:-$root/.venv/bin/covidweak}"
python=${PYTHON:-$root/.venv/bin/python}
mkdir -p "$work/train" "$work/eval" "$work/models"
stage() { echo "[$(date +%T)] $*"; }

phantom() {  # phantom DIR PATIENTS SEED SIZE SLICES STUDIES
  [ -f "$work/$1/manifest.csv" ] && return 0
  stage "phantom $1"
  "${cw[@]}" phantom --out "$work/$1" --patients "$2" --seed "$3" --size "$4" --slices "$5" --studies-per-patient "$6" > /dev/null
}
parts=(s160 s208 s256 s304 s352)
phantom train/s160 150 61000 160 40 2
phantom train/s208 150 62000 208 52 2
phantom train/s256 150 63000 256 64 2
phantom train/s304 150 64000 304 76 2
phantom train/s352 150 65000 352 88 2
phantom test-160 50 66000 160 40 1
phantom test-256 50 67000 256 64 1
phantom test-352 50 68000 352 88 1

# One manifest over the training parts, with paths relative to WORK/train.
[ -f "$work/train/manifest.csv" ] || "$python" "$root/scripts/merge_manifests.py" "$work/train" "${parts[@]}"

train() {  # train TASK CONFIG [--set ...]: WORK/runs/TASK (resumed if interrupted) exported as WORK/models/TASK.pt
  local task=$1 config=$2
  shift 2
  [ -f "$work/models/$task.pt" ] && return 0
  stage "train $task"
  local resume=()
  [ -f "$work/runs/$task/checkpoints/last.pt" ] && resume=(--resume)
  "${cw[@]}" train "$task" --config "$config" --data "$work/train" --out "$work/runs/$task" "${resume[@]}" \
    --set "data.fractions=[0.84,0.16,0.0]" "$@" > "$work/train-$task.log"
  "${cw[@]}" export "$work/runs/$task" --name "$task" --models-dir "$work/models" --overwrite | tail -1
}
train cxr-embed cxr-embed.box --set epochs=3
train severity severity.box --set "params.embed_weights=$work/models/cxr-embed.pt"

for cohort in test-160 test-256 test-352; do
  [ -f "$work/eval/severity-$cohort.json" ] && continue
  stage "score severity on $cohort"
  "${cw[@]}" evaluate severity --data "$work/$cohort" --split all --weights severity-light "$work/models/severity.pt" \
    --labels "whole image (severity-light)" "lung box 1.4 mm" --out "$work/eval/severity-$cohort.json" \
    > "$work/eval/severity-$cohort.md"
done
stage "done"
