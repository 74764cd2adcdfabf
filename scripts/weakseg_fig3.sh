#!/usr/bin/env bash
# Usage: scripts/weakseg_fig3.sh WORK
#
# Fig. 3 of M-SEAM-NAM at the lung box: NAM's training settings, each point a retraining of M-SEAM-NAM
# from the shipped CAM at the shipped recipe's length (mseamnam.box: 40 updates of 8 bags), scored on
# the run's validation patients only:
#   data   the training cohort of scripts/weakseg_box.sh (190 patients, seed 41000, --lesion-scale 2),
#          split 84/16 by patient, so every run has the same 30 validation patients;
#   train  one run per (T_fg, r) of GRID (default: T_fg 0.1, 0.3, 0.5, 0.8 at r = 5, and r = 3, 7 at
#          T_fg 0.1; the paper's Fig. 3 sweeps T_fg 0.1-0.8 and r), all 40 updates in one epoch so that
#          each run validates once, at its end;
#   score  the threshold and size sweeps on the validation patients (weakseg_lib.sh calibrate) ->
#          WORK/eval/val-fig3-t<T>-r<R>.json, and one table row per run on stdout.
# A stage whose output exists is skipped, so the script resumes after an interruption.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$1
data="$work/train"
read -ra cw <<< "${COVIDWEAK:-$root/.venv/bin/covidweak}"
python=${PYTHON:-$root/.venv/bin/python}
split=(--set "data.fractions=[0.84,0.16,0.0]")
source "$root/scripts/weakseg_lib.sh"
cam=${CAM:-$root/Resources/Models/cam-light.pt}
read -ra grid <<< "${GRID:-0.1:5 0.3:5 0.5:5 0.8:5 0.1:3 0.1:7}"

[ -f "$data/manifest.csv" ] || "${cw[@]}" phantom --out "$data" --studies-per-patient 1 --lesion-scale 2 \
  --patients 190 --seed 41000 --mix covid=0.45,cap=0.2,normal=0.35 > /dev/null

echo "| T_fg (training) | r | validation T_fg | positive Dice | negative Dice | mean over all | positive / negative Dice, 0.5 mL gate |"
echo "|---|---|---|---|---|---|---|"
for point in "${grid[@]}"; do
  t_fg=${point%%:*} radius=${point##*:} name="fig3-t${point%%:*}-r${point##*:}"
  train mseamnam "$name" --config mseamnam.box --set params.init_from="$cam" --set params.t_fg="$t_fg" \
    --set params.nam_radius="$radius" --set params.epoch_samples=320 >&2
  calibrate "$name" mseamnam >&2
  "$python" - "$work/eval/val-$name.json" "$t_fg" "$radius" <<'EOF'
import json, sys
from covidweak.weakseg.evaluate import best_sweep_row
report = json.load(open(sys.argv[1]))["methods"]["mseamnam"]
best = best_sweep_row(report["sweep"])
gated = [row for row in report["size_sweep"]["rows"] if row["min_lesion_ml"] == 0.5][0]
dice = lambda row, group: row[group]["dice"]["mean"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {best['t_fg']:g} | {dice(best, 'positive'):.3f} ± "
      f"{best['positive']['dice']['std']:.3f} | {dice(best, 'negative'):.3f} | {dice(best, 'all'):.3f} | "
      f"{dice(gated, 'positive'):.3f} / {dice(gated, 'negative'):.3f} |")
EOF
done
