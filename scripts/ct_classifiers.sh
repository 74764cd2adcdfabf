#!/usr/bin/env bash
# Usage: scripts/ct_classifiers.sh WORK
#
# The CT classifiers of issue 17 on the shared 1.4 mm lung box, trained and scored on this CPU: Hu et
# al.'s three-way diagnosis (COVID-19 / CAP / normal), DuCN (detection + similar cases) and Wu et al.'s
# FeCNN (lesion detection and types):
#   data   a size-varied training cohort: 240 patients at 256²×64 (seed 51000) and 40 each at 208²×48,
#          240²×40, 272²×32 and 304²×44 (seeds 55000-58000), one study per patient, a third of each
#          class, --lesion-scale 2 (the weak-seg Table 1 cohorts' burden); the run splits it 84/16 by
#          patient into training and validation. Three test cohorts of 30 patients (10 per class) at
#          sizes no training patient has: 256²×64 (seed 54000), 224²×56 (52000) and 288²×36 (53000);
#   train  diagnosis.box (balanced sampling, about 15 quiet CPU minutes); validation keeps the checkpoint
#          and chooses the patient aggregation's top_k, never a test cohort; then ducn.box (lesion-bearing
#          detection slices, recommendation by lesion similarity); then fecnn.box (COVID-19 lesion slices
#          against lesion-free ones, one epoch);
#   score  `covidweak evaluate diagnosis|ducn` on each test cohort -> WORK/eval/<cohort>.json/.md and
#          WORK/eval/ducn-<cohort>.json/.md, and the untrained DuCN (scripts/probes/untrained_ducn.py)
#          as the retrieval baseline -> WORK/eval/ducn-untrained-<cohort>.json/.md; `covidweak evaluate
#          fecnn` (slice AUC, hit rates beside the perfect-map ceiling and cam-light, Table 7 with K = 3)
#          -> WORK/eval/fecnn-<cohort>.json/.md.
# A stage whose output exists is skipped, so the script resumes after an interruption.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$1
read -ra cw <<< "${COVIDWEAK:-$root/.venv/bin/covidweak}"
python=${PYTHON:-$root/.venv/bin/python}
mkdir -p "$work/train" "$work/eval"
stage() { echo "[$(date +%T)] $*"; }

phantom() {  # phantom DIR PATIENTS SEED SIZE SLICES
  [ -f "$work/$1/manifest.csv" ] && return 0
  stage "phantom $1"
  "${cw[@]}" phantom --out "$work/$1" --patients "$2" --seed "$3" --size "$4" --slices "$5" --studies-per-patient 1 \
    --lesion-scale 2 --mix covid=1,cap=1,normal=1 > /dev/null
}
parts=(train/s256 train/s208 train/s240 train/s272 train/s304)
phantom train/s256 240 51000 256 64
phantom train/s208 40 55000 208 48
phantom train/s240 40 56000 240 40
phantom train/s272 40 57000 272 32
phantom train/s304 40 58000 304 44
phantom test 30 54000 256 64
phantom test-224x56 30 52000 224 56
phantom test-288x36 30 53000 288 36

# One manifest over the five training parts, with paths relative to WORK/train.
[ -f "$work/train/manifest.csv" ] || "$python" "$root/scripts/merge_manifests.py" "$work/train" "${parts[@]#train/}"

train() {  # train TASK CONFIG: the run WORK/runs/TASK (resumed if interrupted) exported as WORK/models/TASK.pt
  [ -f "$work/models/$1.pt" ] && return 0
  stage "train $1"
  local resume=()
  [ -f "$work/runs/$1/checkpoints/last.pt" ] && resume=(--resume)
  "${cw[@]}" train "$1" --config "$2" --data "$work/train" --out "$work/runs/$1" "${resume[@]}" \
    --set "data.fractions=[0.84,0.16,0.0]" > "$work/train-$1.log"
  "${cw[@]}" export "$work/runs/$1" --name "$1" --models-dir "$work/models" --overwrite | tail -1
}
train diagnosis diagnosis.box
train ducn ducn.box
train fecnn fecnn.box
[ -f "$work/models/ducn-untrained.pt" ] || "$python" "$root/scripts/probes/untrained_ducn.py" --out "$work/models/ducn-untrained.pt"
for cohort in test test-224x56 test-288x36; do
  if [ ! -f "$work/eval/$cohort.json" ]; then
    stage "score diagnosis on $cohort"
    "${cw[@]}" evaluate diagnosis --data "$work/$cohort" --split all --weights "$work/models/diagnosis.pt" \
      --out "$work/eval/$cohort.json" > "$work/eval/$cohort.md"
  fi
  for name in ducn ducn-untrained; do
    [ -f "$work/eval/$name-$cohort.json" ] && continue
    stage "score $name on $cohort"
    "${cw[@]}" evaluate ducn --data "$work/$cohort" --weights "$work/models/$name.pt" \
      --out "$work/eval/$name-$cohort.json" > "$work/eval/$name-$cohort.md"
  done
  if [ ! -f "$work/eval/fecnn-$cohort.json" ]; then
    stage "score fecnn on $cohort"
    "${cw[@]}" evaluate fecnn --data "$work/$cohort" --split all --weights "$work/models/fecnn.pt" \
      --out "$work/eval/fecnn-$cohort.json" > "$work/eval/fecnn-$cohort.md"
  fi
done
stage "done: $work/eval"
