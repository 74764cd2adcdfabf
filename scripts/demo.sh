#!/usr/bin/env bash
# Set up the environment and run the demo on built-in phantom data: writes to ./demo_out (or $1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
# --overwrite replaces only an earlier demo output (the command checks its marker file).
exec "$root/.venv/bin/covidweak" demo --out "${1:-$root/demo_out}" --overwrite
