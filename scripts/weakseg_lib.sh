# Shell functions shared by scripts/weakseg_box.sh and scripts/weakseg_sizemix.sh; source it after
# setting: work (output folder), data (training phantom), cw (covidweak command, an array),
# split (the --set of data.fractions every run uses).
#
#   train TASK NAME ARGS...   train NAME from $data (resumed if interrupted) and export its best
#                             checkpoint with the attenuation gate -> $work/models/raw/NAME.pt
#   calibrate NAME METHOD     choose T_fg and the minimum lesion size on the run's validation
#                             patients -> $work/eval/val-NAME.json, $work/models/NAME.pt
#   score NAME METHOD COHORT  the file at T_fg 0.1 on a test cohort -> $work/eval/<cohort>-NAME.json
floor=(--hu-floor "${HU_FLOOR:--700}")
# Noisy-OR maps put a lesion's edge far below 0.1, so the validation sweep reaches down to 5e-5.
sweep=(--sweep 0.00005 0.0001 0.0002 0.0005 0.001 0.002 0.005 0.01 0.02 0.05 0.1 0.2 0.3 0.5 0.7 0.9)
mkdir -p "$work/models/raw" "$work/eval"
stage() { echo "[$(date +%T)] $*"; }
skipped() { [[ " ${SKIP:-} " == *" $1 "* ]]; }

train() {
  local task=$1 name=$2; shift 2
  skipped "$name" && return 0
  [ -f "$work/models/raw/$name.pt" ] && return 0
  stage "train $name"
  local resume=()
  [ -f "$work/runs/$name/checkpoints/last.pt" ] && resume=(--resume)
  "${cw[@]}" train "$task" --data "$data" --out "$work/runs/$name" "${resume[@]}" "${split[@]}" "$@" > "$work/runs-$name.log"
  "${cw[@]}" export "$work/runs/$name" --name "$name" --checkpoint best --models-dir "$work/models/raw" --overwrite \
    "${floor[@]}" | tail -1
}

calibrate() {
  local name=$1 method=$2 val="$work/eval/val-$1.json"
  if [ ! -f "$val" ]; then
    stage "choose T_fg for $name on the validation patients"
    "${cw[@]}" evaluate weakseg --data "$data" --split val --methods "$method" --weights "$work/models/raw/$name.pt" \
      "${sweep[@]}" --out "$val" > /dev/null
  fi
  [ -f "$work/models/$name.pt" ] || "${cw[@]}" export "$work/runs/$name" --name "$name" --checkpoint best \
    --models-dir "$work/models" "${floor[@]}" --t-fg-from "$val" | tail -1
}

score() {
  local name=$1 method=$2 cohort=$3 out="$work/eval/$(basename "$3")-$1.json"
  [ -f "$out" ] && return 0
  stage "score $name on $(basename "$cohort")"
  "${cw[@]}" evaluate weakseg --data "$cohort" --split all --methods "$method" --weights "$work/models/$name.pt" \
    --t-fg 0.1 --sweep 0.05 0.1 0.2 --out "$out" > /dev/null
}
