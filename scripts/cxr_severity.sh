#!/usr/bin/env bash
# Usage: scripts/cxr_severity.sh WORK
#
# Kim et al.'s chest X-ray severity trained on chests of five sizes (issue 17), trained and scored on this CPU:
#   data   a size-varied cohort of the default phantom (generator 1.2; radiograph labels count visible opacities only),
#          150 patients at each of 160²×40, 208²×52, 256²×64, 304²×76 and 352²×88 (seeds 61000-65000),
#          two studies each (1,260 training radiographs); the phantom's anatomy scales with its field of
#          view, so the sizes are chests of 224-493 mm. Three test cohorts of 50 patients, one study each,
#          at 160²×40 (seed 66000), 256²×64 (67000) and 352²×88 (68000);
#   train  two recipes, each F started from cxr-embed-light (the whole-image F of a 128² phantom) for 3
#          epochs (constant learning rate), then the severity network on that frozen F (24 epochs of 50
#          updates): Kim et al.'s whole-image resize to 256² (cxr-embed.light, severity.light: the shipped
#          severity-light) and the 1.4 mm lung box (cxr-embed.box, severity.box); all split 84/16 by
#          patient and keep their checkpoints on validation only;
#   score  `covidweak evaluate severity` of both files on the runs' validation patients (the choice) and
#          on each test cohort -> WORK/eval/severity-<cohort>.json/.md.
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

train() {  # train NAME TASK CONFIG [--set ...]: WORK/runs/NAME (resumed if interrupted) exported as WORK/models/NAME.pt
  local name=$1 task=$2 config=$3
  shift 3
  [ -f "$work/models/$name.pt" ] && return 0
  stage "train $name"
  local resume=()
  [ -f "$work/runs/$name/checkpoints/last.pt" ] && resume=(--resume)
  "${cw[@]}" train "$task" --config "$config" --data "$work/train" --out "$work/runs/$name" "${resume[@]}" \
    --set "data.fractions=[0.84,0.16,0.0]" "$@" > "$work/train-$name.log"
  "${cw[@]}" export "$work/runs/$name" --name "$name" --models-dir "$work/models" --overwrite | tail -1
}
# Kim et al.'s whole-image recipe (resize to 256²) and the 1.4 mm lung box, each F started from the
# whole-image F of the 128² phantom (cxr-embed-light) for 3 epochs, then the severity network on it.
train embed-whole cxr-embed cxr-embed.light --set epochs=3 --set params.init_from=cxr-embed-light
train severity-whole severity severity.light --set "params.embed_weights=$work/models/embed-whole.pt"
train embed-box cxr-embed cxr-embed.box --set epochs=3
train severity-box severity severity.box --set "params.embed_weights=$work/models/embed-box.pt"

# The choice between the files is made on the runs' validation patients (`--split val`: both runs split
# the same manifest with the same seed, re-created from WORK/models' registry), never on the test cohorts.
score() {  # score NAME EVALUATE-ARGS...: WORK/eval/severity-NAME.json/.md of both new files
  local name=$1
  shift
  [ -f "$work/eval/severity-$name.json" ] && return 0
  stage "score severity on $name"
  COVIDWEAK_MODELS_DIR="$work/models" "${cw[@]}" evaluate severity "$@" --weights severity-whole severity-box \
    --labels "whole image, five sizes" "lung box 1.4 mm, five sizes" \
    --lungs-weights "$root/Resources/Models/cxr-lungs-light.pt" --out "$work/eval/severity-$name.json" \
    > "$work/eval/severity-$name.md"
}
score val --data "$work/train" --split val
for cohort in test-160 test-256 test-352; do
  score "$cohort" --data "$work/$cohort" --split all
done
stage "done"
