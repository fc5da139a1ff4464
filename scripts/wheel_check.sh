#!/usr/bin/env bash
# CI: install merbench as a user would, from its wheel, and run it outside the clone.
# Builds the wheel, checks that it holds the recipes and paper references, installs it into a
# fresh virtual env beside the CPU build of torch 2.13.0 (no extras: no transformers, librosa
# or torch_geometric), then from a temporary folder runs merbench models, one train on the
# synthetic corpus, one compare, a graph model (one line naming the extra to install) and a
# plugin model with a recipe of the working directory; then with the extras extract, opensmile and
# face, merbench extract (openSMILE, the face step) and train on a raw IEMOCAP fixture. A few
# minutes on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
started=$SECONDS
step() { echo "wheel_check [$((SECONDS - started)) s] $*"; }

step "build the wheel"
# --no-build-isolation: the setuptools of the project's .venv (scripts/setup.sh), so no download.
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" . >/dev/null
rm -rf build/lib build/bdist.*  # setuptools' staging folders in the clone (build/mutation is not ours)
WHEEL=$(ls "$WORK"/dist/merbench-*.whl)
for member in merbench/recipes/synthetic/hff.yaml merbench/recipes/base/synthetic.yaml \
              merbench/recipes/references/hff.yaml merbench/recipes/iemocap/tfn.yaml \
              merbench/recipes/mosi/hff.yaml merbench/recipes/base/mosi.yaml merbench/recipes/spaces/mlp.yaml; do
  "$PYTHON" -c "import sys, zipfile; sys.exit(sys.argv[2] not in zipfile.ZipFile(sys.argv[1]).namelist())" "$WHEEL" "$member" \
    || { echo "wheel_check: $WHEEL lacks $member"; exit 1; }
done

step "fresh virtual env: torch 2.13.0 (CPU), then the wheel"
"$PYTHON" -m venv "$WORK/venv"
BIN=$WORK/venv/bin
bash scripts/cpu_torch.sh "$BIN/python"
step "install the wheel beside it"
torch_before=$("$BIN/python" -m pip show torch | grep '^Version:')
"$BIN/python" -m pip install -q "$WHEEL"
# merbench's torch range admits the torch already there: pip kept it.
[ "$("$BIN/python" -m pip show torch | grep '^Version:')" = "$torch_before" ] \
  || { echo "wheel_check: installing merbench replaced torch ($torch_before)"; exit 1; }

cd "$WORK"  # outside the clone: only the installed package
step "merbench --version / python -m merbench / models"
"$BIN/merbench" --version
"$BIN/python" -m merbench --version
"$BIN/merbench" models | grep -q "cogmen"

step "train synthetic/mlp (the packaged recipe, 2 epochs)"
"$BIN/merbench" train recipes/synthetic/mlp.yaml --set train.max_epochs=2 --set train.threads=1 --quiet --out runs >/dev/null
ls runs/synthetic-mlp-seed0-*/result.json >/dev/null

step "compare mlp and late_mlp on synthetic (1 seed, 2 epochs)"
"$BIN/merbench" compare --dataset synthetic --models mlp,late_mlp --seeds 1 --set train.max_epochs=2 --threads 1 \
  --quiet --out grids --format markdown | grep -q "| late_mlp"

step "a graph model without torch_geometric: one line naming the extra"
if "$BIN/merbench" train synthetic/cogmen --out runs 2>err.txt; then
  echo "wheel_check: cogmen trained without torch_geometric"; exit 1
fi
grep -q "pip install 'merbench\[graph\]'" err.txt || { cat err.txt; exit 1; }

step "tune without optuna (no extras): one line naming the extra"
if "$BIN/merbench" tune mlp --dataset synthetic --trials 1 --out grids 2>err.txt; then
  echo "wheel_check: merbench tune ran without optuna"; exit 1
fi
grep -q "pip install 'merbench\[tune\]'" err.txt || { cat err.txt; exit 1; }

step "a plugin model, its recipe in ./recipes (extends the packaged base)"
mkdir -p recipes/synthetic
printf '# merbench --plugin gated_attention.py train recipes/synthetic/gated_attention.yaml\nextends: ../base/synthetic.yaml\nmodel:\n  name: gated_attention\n' \
  > recipes/synthetic/gated_attention.yaml
cp "$REPO/docs/examples/gated_attention.py" .
"$BIN/merbench" --plugin gated_attention.py compare --dataset synthetic --models gated_attention --seeds 1 \
  --set train.max_epochs=2 --threads 1 --quiet --out grids --format csv | grep -q "gated_attention"
MOSI=${MERBENCH_MOSI_ROOT:-$REPO/../shared/data/mosi}
if [ -f "$MOSI/transcripts.csv" ]; then
  step "train mosi/hff on the real CMU-MOSI copy (1 epoch): three modalities, every HFF component built"
  "$BIN/merbench" train mosi/hff --set dataset.root="$MOSI" --set train.max_epochs=1 --set train.threads=1 \
    --quiet --out runs >/dev/null
  "$BIN/python" - runs/mosi-*hff-seed0-*/result.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["dataset"]["modalities"] == ["audio", "text", "vision"], r["dataset"]["modalities"]
assert r["model"]["inactive_components"] == [], r["model"]
assert {"dynamic_weighting", "uncertainty"} <= set(r["model"]["active_components"]), r["model"]
PY
else
  step "no CMU-MOSI copy at $MOSI: the mosi/hff train step is skipped"
fi
step "extras extract, opensmile, face: merbench extract (openSMILE, the face step) on a raw IEMOCAP fixture, then train"
"$BIN/python" -m pip install -q "$WHEEL[extract,opensmile,face]"
[ "$("$BIN/python" -m pip show torch | grep '^Version:')" = "$torch_before" ] \
  || { echo "wheel_check: installing merbench's extras replaced torch ($torch_before)"; exit 1; }
# The fixture writer of the tests (a release folder of tiny wavs and avis) and a tiny random ResNet.
"$BIN/python" - "$REPO/tests" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from fixtures import write_iemocap_raw
from transformers import ResNetConfig, ResNetModel
write_iemocap_raw(Path("IEMOCAP_full_release"), avi=True)
ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")).save_pretrained("resnet")
PY
"$BIN/merbench" extract --dataset iemocap --root IEMOCAP_full_release --audio opensmile --vision resnet \
  --vision-model resnet --face --frames 2 --option vision.size=32 --option "vision.speaker_side={F: left, M: right}" \
  --quiet >extract.txt 2>&1 || { cat extract.txt; exit 1; }
grep -q "audio: 88-d vectors, extracted by opensmile" extract.txt || { cat extract.txt; exit 1; }
grep -q "frames had no face" extract.txt || { cat extract.txt; exit 1; }  # the fixture's videos are flat grey
printf 'dataset:\n  name: iemocap\n  root: IEMOCAP_full_release\n  modalities: [audio, vision]\n  features:\n    audio: opensmile\n    vision: {name: resnet, model: resnet, face: true, frames: 2, size: 32, speaker_side: {F: left, M: right}}\nmodel:\n  name: mlp_tiny\ntrain:\n  max_epochs: 1\n  threads: 1\n' > faces.yaml
"$BIN/merbench" train faces.yaml --quiet --out runs >/dev/null
"$BIN/python" - runs/iemocap-*mlp_tiny-seed0-*/result.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["dataset"]["dims"] == {"audio": 88, "vision": 16}, r["dataset"]["dims"]
assert r["dataset"]["info"]["features"]["vision"]["counts"]["frames_without_face"] > 0, r["dataset"]["info"]["features"]
PY
step "ok"
