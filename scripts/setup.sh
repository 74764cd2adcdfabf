#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
# Idempotent: reinstalls only when training/pyproject.toml or pyproject.toml changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.covidweak-installed"
want="$(cat "$root/training/pyproject.toml" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip
  # torch first and exactly: the CPU wheel on local disk, never a multi-GB CUDA build.
  "$venv/bin/python" -m pip install -q "torch==2.13.0"
  "$venv/bin/python" -m pip install -q -e "$root/training[cpu,test]"
  # The extension's Logics and batch (the repository's pyproject.toml); covidweak is already there.
  "$venv/bin/python" -m pip install -q -e "$root" --no-deps
  echo "$want" > "$stamp"
fi
