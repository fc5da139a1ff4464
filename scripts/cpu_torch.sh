#!/usr/bin/env bash
# Install the CPU build of torch 2.13.0 into the Python given as $1 (scripts/setup.sh and
# scripts/wheel_check.sh): a wheel in pip's --find-links (PIP_FIND_LINKS) when there is one,
# else PyTorch's CPU index. A bare "pip install torch" would pull the multi-GB CUDA build.
# In an environment of your own, the README's one line does the same:
#   pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
set -euo pipefail
PY=$1
"$PY" -m pip install -q --no-index --no-deps "torch==2.13.0+cpu" >/dev/null 2>&1 \
  || "$PY" -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
"$PY" -m pip install -q "torch==2.13.0"  # its dependencies (a no-op after the CPU index)
