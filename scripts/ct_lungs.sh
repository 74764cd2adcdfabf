#!/usr/bin/env bash
# Train the ct-lungs-light network (covidweak.lungs.learned) on generated phantoms and export it to WORK/models.
#
#   bash scripts/ct_lungs.sh WORK
#
# Six cohorts, 140 patients with 3 studies each at 128²×32, 160²×40, 224²×56, 256²×64 and 288²×36
# (the phantom's chest scales with its matrix, so the first two are child-sized chests): COVID-19
# patients over-represented and three cohorts with enlarged lesions (--lesion-scale), so that
# consolidation filling a lobe, where the classical mask fails, is common. The patients of the
# combined manifest are split 90 / 10 into training and validation (configs/ct-lungs.light.yaml).
set -euo pipefail
work="${1:?usage: bash scripts/ct_lungs.sh WORK}"
covidweak="${COVIDWEAK:-covidweak}"
mkdir -p "$work"
cohort() {  # name patients size slices seed mix lesion-scale
  [ -f "$work/$1/manifest.csv" ] || "$covidweak" phantom --out "$work/$1" --patients "$2" --studies-per-patient 3 \
      --size "$3" --slices "$4" --seed "$5" --mix "$6" --lesion-scale "$7"
}
cohort tr-a 30 256 64 90000 covid=0.7,cap=0.15,normal=0.15 1
cohort tr-b 25 256 64 91000 covid=0.8,cap=0.2 2
cohort tr-c 20 224 56 92000 covid=0.7,cap=0.15,normal=0.15 1.5
cohort tr-d 20 288 36 93000 covid=0.8,normal=0.2 2
cohort tr-e 25 160 40 94000 covid=0.7,cap=0.15,normal=0.15 1.5
cohort tr-f 20 128 32 95000 covid=0.8,normal=0.2 1
# One manifest over the six cohorts (scripts/merge_manifests.py), for a patient-level split of all of them.
[ -f "$work/manifest.csv" ] || "${PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/merge_manifests.py" "$work" \
    tr-a tr-b tr-c tr-d tr-e tr-f
"$covidweak" train ct-lungs --data "$work" --out "$work/run" --config ct-lungs.light --device cpu \
    $( [ -f "$work/run/checkpoints/last.pt" ] && echo --resume )
# Into WORK/models; to ship it: covidweak export WORK/run --name ct-lungs-light --half --overwrite
"$covidweak" export "$work/run" --name ct-lungs-light --half --models-dir "$work/models" --overwrite
