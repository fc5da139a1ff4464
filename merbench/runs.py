"""Run identity and the run folder's layout.

A run is identified by the hash of (resolved recipe, merbench source hash): the same recipe,
seed and code always map to the same folder, which is how grids find finished cells.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from merbench.plugins import plugin_of
from merbench.results import source_hash

RESULT = "result.json"
RECIPE = "recipe.yaml"
METRICS_CSV = "metrics.csv"
LOG = "train.log"
PREDICTIONS = "predictions.npz"
LAST = "checkpoints/last.pt"
BEST = "checkpoints/best.pt"


def run_id(recipe: dict, code: str | None = None) -> str:
    plugin = plugin_of(recipe["model"]["name"])  # a plugin model: its file's hash is part of the id
    payload = json.dumps(recipe, sort_keys=True) + (code or source_hash()) + (plugin.sha256 if plugin else "")
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def run_name(recipe: dict, code: str | None = None) -> str:
    ds, model, seed = recipe["dataset"]["name"], recipe["model"]["name"], recipe["train"]["seed"]
    return f"{ds}-{model}-seed{seed}-{run_id(recipe, code)}"


def is_finished(run_dir: Path) -> bool:
    """True only when result.json exists and says ok (a failed run is not finished)."""
    path = Path(run_dir) / RESULT
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text()).get("status") == "ok"
    except (json.JSONDecodeError, OSError):
        return False
