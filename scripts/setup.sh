#!/usr/bin/env bash
# Set up merbench on a fresh machine: a virtual env in .venv with the CPU build of torch
# 2.13.0 installed first (a bare "torch" requirement would pull a multi-GB CUDA build), then
# merbench with its extraction, graph, openSMILE, face, tune and test extras. Safe to run again: it installs only
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PY=.venv/bin/python
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  bash scripts/cpu_torch.sh "$PY"
fi
if ! "$PY" -c "import merbench, transformers, torch_geometric, pytest, librosa, av, h5py, pandas, opensmile, cv2, optuna" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.merbench-installed ]; then
  "$PY" -m pip install -q -e ".[extract,graph,opensmile,face,tune,test]"
  touch .venv/.merbench-installed
fi
