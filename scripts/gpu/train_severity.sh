#!/bin/bash
# Usage: train_severity.sh WORK EMBED_SECONDS SEVERITY_SECONDS [PATIENTS_PER_PROC PROCS EPOCHS_EMBED EPOCHS_SEV]
# Kim et al. on one GPU: phantom DRRs (128x128x32 CTs, as the held-out set), the embedding network F
# (multi-label pre-training with PCAM), then the supervised hybrid ViT on the frozen F.
set -uo pipefail
work=$1 embed_s=$2 sev_s=$3 each=${4:-100} procs=${5:-8} e_embed=${6:-12} e_sev=${7:-40}
mkdir -p "$work/models"
date +%T; bash "$(dirname "$0")/phantoms.sh" "$work/data" "$procs" "$each" 900 128 32
date +%T
timeout -s INT "$embed_s" python3 -m covidweak train cxr-embed --data "$work/data/manifest.csv" --out "$work/runs/embed" \
  --config cxr-embed.light --set amp=bf16 --set epochs="$e_embed" --set batch_size=32 ${EXTRA_EMBED:-}
python3 -m covidweak export "$work/runs/embed" --name cxr-embed-gpu --half --models-dir "$work/models" --overwrite \
  || python3 -m covidweak export "$work/runs/embed" --name cxr-embed-gpu --half --models-dir "$work/models" --overwrite --checkpoint last
date +%T
timeout -s INT "$sev_s" python3 -m covidweak train severity --data "$work/data/manifest.csv" --out "$work/runs/severity" \
  --config severity.light --set params.embed_weights="$work/models/cxr-embed-gpu.pt" --set amp=bf16 \
  --set epochs="$e_sev" --set batch_size=32 --set params.steps_per_epoch=100 ${EXTRA_SEV:-}
date +%T
