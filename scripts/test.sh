#!/usr/bin/env bash
# Set up the environment and run the whole test suite (CPU; GPU tests skip without CUDA).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
export QT_QPA_PLATFORM=offscreen
exec "$root/.venv/bin/python" -m pytest Testing "$@"
