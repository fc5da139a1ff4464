"""Numbers that papers report, read from ``recipes/references/<name>.yaml`` (packaged with merbench).

These files hold what a paper printed, with its citation, so tables can set merbench's
results beside the paper's. They are typed from the paper once and never from a run.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from merbench.errors import MerbenchError
from merbench.recipe import load_yaml
from merbench.recipe_paths import REFERENCES
from merbench.registry import closest


def reference_names() -> list[str]:
    return sorted(p.stem for p in REFERENCES.glob("*.yaml"))


def load_reference(name: str) -> dict:
    """The reference file of ``name`` (e.g. "hff") as a dict with ``citation`` and ``tables``."""
    path = REFERENCES / f"{name}.yaml"
    if not path.exists():
        names = reference_names()
        raise MerbenchError(f"{path}: no reference file for {name!r}{closest(name, names)}; "
                            f"valid: {', '.join(names) or f'none (is {REFERENCES} present?)'}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise MerbenchError(f"{path}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict) or "citation" not in data or not isinstance(data.get("tables"), dict):
        raise MerbenchError(f"{path}: expected a mapping with 'citation' and 'tables'")
    return data


def run_features(recipe: dict) -> dict[str, str]:
    """Modality -> the name of the features a run read: the extractor of ``dataset.features``, or
    "<dataset>'s own" for features that come with the data (shipped or generated)."""
    specs = recipe["dataset"].get("features") or {}
    out = {}
    for m in recipe["dataset"]["modalities"]:
        spec = specs.get(m)
        name = spec.get("name") if isinstance(spec, dict) else spec
        out[m] = name or f"{recipe['dataset']['name']}'s own"
    return out


def incomparable(table: dict, modalities: Sequence[str] | None, features: dict[str, str]) -> str | None:
    """Why a reference ``table``'s numbers cannot stand beside runs on ``modalities`` (None: the
    table's columns name the modalities, as in an ablation) with ``features`` (modality ->
    name, ``run_features``); None when they can. A paper's number for other modalities or other
    features is a different experiment, not a comparison."""
    paper_modalities, paper_features = table.get("modalities"), table.get("features")
    if paper_modalities is None or paper_features is None:
        return "the reference table does not record the modalities and features of its numbers"
    if modalities is not None and set(modalities) != set(paper_modalities):
        return f"the paper's numbers use {'+'.join(paper_modalities)}, these runs {'+'.join(modalities)}"
    differ = [m for m in (modalities or paper_modalities) if m in features and features[m] != paper_features.get(m)]
    if differ:
        return ("the paper's features are " + ", ".join(f"{m} {paper_features.get(m)}" for m in differ)
                + ", these runs' " + ", ".join(f"{m} {features[m]}" for m in differ))
    return None
