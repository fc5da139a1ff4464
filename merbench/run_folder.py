"""A run folder: its name (the run identity) and its layout.

A run is identified by the hash of (resolved recipe, merbench source hash, data key): the same
recipe, seed, code and data always map to the same folder, which is how grids find finished
cells, and other data (a root given by ``MERBENCH_<DATASET>_ROOT``, or files that changed) is
another run. The data key is cheap: the path, size and modification time of every file under
the dataset's root, so planning a grid never reads the corpus.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from merbench.plugins import plugin_of
from merbench.registry import DATASETS
from merbench.results import source_hash
from merbench.signature import keyword_defaults

RESULT = "result.json"
RECIPE = "recipe.yaml"
METRICS_CSV = "metrics.csv"
LOG = "train.log"
PREDICTIONS = "predictions.npz"
LAST = "checkpoints/last.pt"
BEST = "checkpoints/best.pt"


def identity(recipe: dict, code: str | None = None) -> dict[str, str]:
    """Everything a run's id hashes, by name.

    Hook for plugins: a model or dataset loaded from a plugin file adds that file's hash here
    (``"plugins": ...``), so editing the plugin makes another run, as editing merbench does.
    """
    # dict(): a validated ``merbench.recipe.Recipe`` hashes as the mapping it was written as
    key = {"recipe": json.dumps(dict(recipe), sort_keys=True), "code": code or source_hash(),
           "data": data_key(recipe)}
    plugin = plugin_of(recipe["model"]["name"])
    if plugin:
        key["plugin"] = plugin.sha256
    return key


def run_id(recipe: dict, code: str | None = None) -> str:
    payload = json.dumps(identity(recipe, code), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def data_key(recipe: dict) -> str:
    """A hash of the files the recipe's dataset reads, without reading them; "" when the
    recipe alone makes the data (a dataset without ``root``, such as ``synthetic``) or no root
    is given (loading the corpus then fails with its own message)."""
    # start-up: numpy only when this runs
    from merbench.data.readers import given_root

    name = recipe["dataset"]["name"]
    if "root" not in keyword_defaults(DATASETS.get(name)):
        return ""
    root = given_root(name, recipe["dataset"].get("root", ""))
    return _files_key(str(Path(os.path.expanduser(root)).resolve())) if root else ""


@functools.lru_cache(maxsize=None)
def _files_key(root: str) -> str:
    """sha256 of (path relative to ``root``, size, mtime) of every file under it, hidden ones
    left out (a feature cache or an editor's files beside the data must not change the key).
    Computed once per process and root, as merbench's source hash is."""
    top = Path(root)
    if top.is_file():
        entries = [(top.name, top.stat())]
    else:
        entries = []
        for folder, dirs, files in os.walk(top, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                path = Path(folder) / f
                if not f.startswith(".") and path.exists():  # exists: not a dangling link
                    entries.append((path.relative_to(top).as_posix(), path.stat()))
    h = hashlib.sha256()
    for rel, st in entries:
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


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
