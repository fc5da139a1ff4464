"""Recipes: YAML with one ``extends`` parent, validated strictly before any work.

Sections: ``dataset`` (registry name, ``modalities``, the dataset's arguments), ``model``
(registry name and constructor arguments), ``train`` and ``eval`` (fixed keys below).
Anything unknown stops the run naming the file, the key path and the closest valid name.
``--set a.b=value`` overrides go through the same validation.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from merbench.data.types import MODALITIES
from merbench.errors import MerbenchError
from merbench.recipe_paths import find_recipe
from merbench.registry import DATASETS, MODELS, closest
from merbench.signature import check_kwargs, keyword_defaults, same_type

SECTIONS = ("extends", "dataset", "model", "train", "eval")
# Defaults from the HFF paper (section 4.1): AdamW, lr 3e-4, batch 64, at most 50 epochs,
# early stopping after 5 epochs without improvement, ReduceLROnPlateau, gradient clipping.
TRAIN_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "lr": 3e-4,
    "optimizer": "adamw",  # adamw: decoupled weight decay; adam: weight_decay is L2 in the gradient
    "weight_decay": 0.01,
    "batch_size": 64,  # utterances per batch (utterance-level models)
    "dialogue_batch_size": 8,  # dialogues per batch (dialogue-level models)
    "max_epochs": 50,
    "patience": 5,
    "grad_clip": 1.0,
    "class_weights": False,
    "selection_metric": "auto",  # auto = wf1 (classification) / mae (regression)
    "lr_factor": 0.5,
    "lr_patience": 2,
    "aux_weights": {},  # aux loss name -> weight; unlisted aux losses weigh 1.0
    "device": "auto",  # auto = cuda when present, else cpu
    "threads": 0,  # torch CPU threads; 0 = torch's default
}
OPTIMIZERS = ("adam", "adamw")  # torch.optim.Adam / torch.optim.AdamW
EVAL_DEFAULTS: dict[str, Any] = {"splits": ["valid", "test"]}
SPLITS = ("train", "valid", "test")


def _load_yaml(path: Path) -> dict:
    if not path.exists():
        raise MerbenchError(f"{path}: no such recipe file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MerbenchError(f"{path}: not valid YAML{where} ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise MerbenchError(f"{path}: expected a mapping with sections {', '.join(SECTIONS[1:])}")
    return data


def _merge(parent: dict, child: dict) -> dict:
    out = copy.deepcopy(parent)
    for key, value in child.items():
        # A section naming another dataset or model replaces the parent's whole section: the
        # parent's arguments belong to its own dataset / model.
        renamed = isinstance(value, dict) and isinstance(out.get(key), dict) and \
            key in ("dataset", "model") and value.get("name", out[key].get("name")) != out[key].get("name")
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "aux_weights" and not renamed:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_recipe_file(path: Path, _seen: tuple[Path, ...] = ()) -> dict:
    """The recipe with its ``extends`` parent merged in (one parent, which may extend again).

    A path that does not exist names a packaged recipe (``merbench.recipe_paths``)."""
    path = find_recipe(path).resolve()
    if path in _seen:
        raise MerbenchError(f"{path}: extends itself in a cycle")
    data = _load_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise MerbenchError(f"{path}: extends: expected one path (a string), got {parent!r}")
    return _merge(read_recipe_file(path.parent / parent, _seen + (path,)), data)


def validate(recipe: dict, source: str) -> dict:
    """Check every key and fill defaults; returns the resolved recipe (a new dict)."""
    for key in recipe:
        if key not in SECTIONS[1:]:
            raise MerbenchError(f"{source}: {key}: unknown section{closest(key, SECTIONS[1:])}; "
                                f"valid: {', '.join(SECTIONS[1:])}")
    for key in ("dataset", "model"):
        if not isinstance(recipe.get(key), dict) or "name" not in recipe[key]:
            raise MerbenchError(f"{source}: {key}.name: required (a registered {key} name)")
    resolved: dict[str, Any] = {}

    dataset = dict(recipe["dataset"])
    name = dataset.pop("name")
    if name not in DATASETS:
        raise MerbenchError(f"{source}: dataset.name: unknown dataset {name!r}{closest(name, DATASETS.names())}; "
                            f"valid: {', '.join(DATASETS.names())}")
    modalities = dataset.pop("modalities", list(MODALITIES))
    if (not isinstance(modalities, list) or not modalities
            or any(m not in MODALITIES for m in modalities) or len(set(modalities)) != len(modalities)):
        bad = next((m for m in modalities if m not in MODALITIES), modalities) if isinstance(modalities, list) else modalities
        raise MerbenchError(f"{source}: dataset.modalities: expected a non-empty list of distinct "
                            f"{', '.join(MODALITIES)}, got {bad!r}{closest(bad, MODALITIES)}")
    check_kwargs(keyword_defaults(DATASETS.get(name)), dataset, f"{source}: dataset", f"dataset {name!r}")
    resolved["dataset"] = {"name": name, "modalities": [m for m in MODALITIES if m in modalities], **dataset}

    model = dict(recipe["model"])
    mname = model.pop("name")
    if mname not in MODELS:
        raise MerbenchError(f"{source}: model.name: unknown model {mname!r}{closest(mname, MODELS.names())}; "
                            f"valid: {', '.join(MODELS.names())}")
    from merbench.models.build import model_defaults  # models import torch: only when needed

    check_kwargs(model_defaults(mname), model, f"{source}: model", f"model {mname!r}")
    resolved["model"] = {"name": mname, **model}

    resolved["train"] = _fixed_section(recipe.get("train") or {}, TRAIN_DEFAULTS, f"{source}: train")
    for key, weight in resolved["train"]["aux_weights"].items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool):
            raise MerbenchError(f"{source}: train.aux_weights.{key}: expected a number, got {weight!r}")
    for key in ("lr", "batch_size", "dialogue_batch_size", "max_epochs"):
        if resolved["train"][key] <= 0:
            raise MerbenchError(f"{source}: train.{key}: expected a positive number, got {resolved['train'][key]!r}")
    if resolved["train"]["optimizer"] not in OPTIMIZERS:
        raise MerbenchError(f"{source}: train.optimizer: expected one of {', '.join(OPTIMIZERS)}, got "
                            f"{resolved['train']['optimizer']!r}{closest(resolved['train']['optimizer'], OPTIMIZERS)}")
    if resolved["train"]["device"] not in ("auto", "cpu") and not str(resolved["train"]["device"]).startswith("cuda"):
        raise MerbenchError(f"{source}: train.device: expected auto, cpu or cuda[:N], got {resolved['train']['device']!r}")
    resolved["eval"] = _fixed_section(recipe.get("eval") or {}, EVAL_DEFAULTS, f"{source}: eval")
    for split in resolved["eval"]["splits"]:
        if split not in SPLITS:
            raise MerbenchError(f"{source}: eval.splits: unknown split {split!r}{closest(split, SPLITS)}; "
                                f"valid: {', '.join(SPLITS)}")
    return resolved


def _fixed_section(section: Any, defaults: dict, where: str) -> dict:
    if not isinstance(section, dict):
        raise MerbenchError(f"{where}: expected a mapping, got {section!r}")
    for key, value in section.items():
        if key not in defaults:
            raise MerbenchError(f"{where}.{key}: unknown key{closest(key, defaults)}; valid: {', '.join(defaults)}")
        if not same_type(value, defaults[key]):
            raise MerbenchError(f"{where}.{key}: expected {type(defaults[key]).__name__}, got {value!r}")
    return {**copy.deepcopy(defaults), **copy.deepcopy(section)}


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise MerbenchError(f"--set {text}: expected KEY.PATH=VALUE, e.g. model.hidden=64")
    key, raw = text.split("=", 1)
    path = key.strip().split(".")
    if len(path) < 2 or not all(path):
        raise MerbenchError(f"--set {text}: expected SECTION.KEY=VALUE, e.g. train.seed=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_overrides(recipe: dict, overrides: list[str]) -> dict:
    out = copy.deepcopy(recipe)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part, {}), dict):
                raise MerbenchError(f"--set {text}: {part} is not a section")
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def load_recipe(path: Path | str, overrides: list[str] | None = None) -> dict:
    """Read, merge ``extends``, apply ``--set`` overrides, validate. The one entry point."""
    raw = read_recipe_file(Path(path))
    resolved = validate(raw, str(path))  # the file must stand on its own
    if not overrides:
        return resolved
    return validate(apply_overrides(raw, overrides), f"--set {' '.join(overrides)}")


def recipe_hash(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
