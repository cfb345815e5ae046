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
reqs=binder/requirements.txt
# Where PyTorch's CPU index cannot be reached (an offline mirror), pip would retry it for every package;
# drop that one line: the CPU wheel must then come from the local find-links, and the check below proves
# that it did (a CUDA build fails it).
if ! python -c "import urllib.request; urllib.request.urlopen('https://download.pytorch.org/whl/cpu/', timeout=5)" 2>/dev/null; then
  echo "PyTorch's CPU index is unreachable: installing without --extra-index-url"
  reqs_tmp=$(mktemp)
  grep -v -- '--extra-index-url' binder/requirements.txt > "$reqs_tmp"
  reqs=$reqs_tmp
fi
"$venv/bin/python" -m pip install --quiet -r "$reqs"
"$venv/bin/python" -m pip install --quiet "nbmake>=1.5,<2" "pytest>=8,<10"
echo "install time: $(( $(date +%s) - start )) s"
"$venv/bin/python" - <<'PY'
import torch
print(f"torch {torch.__version__}; CUDA build: {torch.version.cuda is not None}")
assert torch.version.cuda is None, "Binder environment pulled a CUDA build of torch"
PY
VPD_LITE_QUICK=1 "$venv/bin/python" -m pytest --nbmake notebooks/04_erase_german.ipynb -q -p no:cacheprovider
echo "environment size on disk: $(du -sh "$venv" | cut -f1)"
