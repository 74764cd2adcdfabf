#!/usr/bin/env bash
# Usage: scripts/weakseg_sizemix.sh WORK CT_WORK BOX_WORK
#
# The CAM and M-SEAM-NAM continued on chests of several sizes and heights (issue 16's geometry bar):
#   data   CT_WORK/train, the size-varied cohort of scripts/ct_classifiers.sh (400 patients: 240 at
#          256²×64, 40 each at 208²×48, 240²×40, 272²×32 and 304²×44, --lesion-scale 2), split 90/10 by
#          patient, so the validation patients include short, wide chests;
#   train  the box CAM from the shipped cam-light (6 epochs of 1,200 slices, Adam 3e-4 with linear decay),
#          then M-SEAM-NAM from that CAM with the shipped recipe (mseamnam.box);
#   choose T_fg and the minimum lesion size of each on its validation patients (weakseg_lib.sh);
#   score  both files on the test cohorts of scripts/weakseg_box.sh in BOX_WORK (the --lesion-scale 2
#          cohorts and the calibrated ones) -> WORK/eval/<cohort>-<name>.json.
# A stage whose output exists is skipped, so the script resumes after an interruption.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$1
data="$2/train"
box=$3
read -ra cw <<< "${COVIDWEAK:-$root/.venv/bin/covidweak}"
split=(--set "data.fractions=[0.9,0.1,0.0]")
source "$root/scripts/weakseg_lib.sh"

train cam-pretrain cam-mix --config cam-pretrain.box --set params.init_from="$root/Resources/Models/cam-light.pt" \
  --set epochs=6 --set optim.lr=0.0003 --set params.epoch_samples=1200
train mseamnam mseamnam-mix --config mseamnam.box --set params.init_from="$work/models/raw/cam-mix.pt"
calibrate cam-mix cam
calibrate mseamnam-mix mseamnam
for cohort in test test-224x56 test-288x36 test-cal test-cal-224x56 test-cal-288x36; do
  score mseamnam-mix mseamnam "$box/$cohort"
  score cam-mix cam "$box/$cohort"
done
stage "done: $work/eval"
