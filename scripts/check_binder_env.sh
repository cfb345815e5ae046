#!/usr/bin/env bash
# Build the Binder environment (binder/requirements.txt) in a fresh venv, check that torch is a CPU build,
# execute notebooks/04_erase_german.ipynb in quick mode inside it, and print the venv's size on disk.
#
# Usage: bash scripts/check_binder_env.sh [VENV_DIR]    (default: a new temporary folder, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${1:-}" ]; then
  venv="$1"
else
  tmp=$(mktemp -d)
  venv="$tmp/binder-venv"
  trap 'rm -rf "$tmp"' EXIT
fi
python -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
start=$(date +%s)
"$venv/bin/python" -m pip install --quiet -r binder/requirements.txt
"$venv/bin/python" -m pip install --quiet "nbmake>=1.5,<2" "pytest>=8,<10"
echo "install time: $(( $(date +%s) - start )) s"
"$venv/bin/python" - <<'PY'
import torch
print(f"torch {torch.__version__}; CUDA build: {torch.version.cuda is not None}")
assert torch.version.cuda is None, "Binder environment pulled a CUDA build of torch"
PY
VPD_LITE_QUICK=1 "$venv/bin/python" -m pytest --nbmake notebooks/04_erase_german.ipynb -q -p no:cacheprovider
echo "environment size on disk: $(du -sh "$venv" | cut -f1)"
