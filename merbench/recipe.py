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
import re
from pathlib import Path
from typing import Any

import yaml

from merbench.data.types import MODALITIES
from merbench.device import DEFAULT_THREADS
from merbench.errors import EXCERPT_CHARS, MerbenchError, excerpt, read_text
from merbench.ranges import FACTOR, NON_NEGATIVE, POSITIVE, SIZE, Range, argument_ranges
from merbench.recipe_paths import find_recipe
from merbench.registry import DATASETS, MODELS, closest
from merbench.signature import keyword_defaults, kwargs_problems, literal_choices, same_type

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
    # z-score every feature dimension with the training split's statistics (merbench's option;
    # features at their release's scale otherwise, as the papers' code reads them)
    "standardize": False,
    "selection_metric": "auto",  # auto = wf1 (classification) / mae (regression)
    "lr_factor": 0.5,
    "lr_patience": 2,
    # what ReduceLROnPlateau follows: the selection metric on valid, or the valid task loss
    "lr_schedule_on": "selection",
    "aux_weights": {},  # aux loss name -> weight; unlisted aux losses weigh 1.0
    "device": "auto",  # auto = cuda when present, else cpu
    "threads": DEFAULT_THREADS,  # torch CPU threads (0 = torch's default)
}
OPTIMIZERS = ("adam", "adamw")  # torch.optim.Adam / torch.optim.AdamW
LR_SCHEDULE_ON = ("selection", "loss")  # the selection metric / the validation task loss
# The range of every numeric train key (merbench.ranges); a NaN or infinity is never allowed.
TRAIN_RANGES: dict[str, Range] = {
    "seed": NON_NEGATIVE, "lr": POSITIVE, "weight_decay": NON_NEGATIVE, "batch_size": SIZE,
    "dialogue_batch_size": SIZE, "max_epochs": SIZE, "patience": NON_NEGATIVE,
    "grad_clip": NON_NEGATIVE, "lr_factor": FACTOR, "lr_patience": NON_NEGATIVE, "threads": NON_NEGATIVE,
}
EVAL_DEFAULTS: dict[str, Any] = {"splits": ["valid", "test"]}
SPLITS = ("train", "valid", "test")


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading floats as YAML 1.2 does: ``5e-5`` and ``1E4`` are numbers
    (PyYAML's YAML 1.1 rules want a dot, ``5.0e-5``, and read ``5e-5`` as a string)."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """A recipe file's, a ``--set`` value's or a reference file's YAML (``YamlLoader``)."""
    return yaml.load(text, Loader=YamlLoader)


def _load_yaml(path: Path) -> dict:
    text = read_text(path, "a recipe file (.yaml)", "no such recipe file")
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MerbenchError(f"{path}: not valid YAML{where} ({getattr(e, 'problem', None) or e})") from None
    except RecursionError:
        raise MerbenchError(f"{path}: not a recipe (YAML nested too deeply)") from None
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
    if Path(path).is_dir():
        raise MerbenchError(f"{path}: is a folder, expected a recipe file (.yaml)")
    path = find_recipe(path).resolve()
    if path in _seen:
        raise MerbenchError(f"{path}: extends itself in a cycle")
    data = _load_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise MerbenchError(f"{path}: extends: expected one path (a string), got {excerpt(parent)}")
    if (path.parent / parent).is_dir():
        raise MerbenchError(f"{path}: extends: {parent} is a folder, expected a recipe file (.yaml)")
    return _merge(read_recipe_file(path.parent / parent, _seen + (path,)), data)


class Problems:
    """Every error found in one recipe, raised together as one message: a user fixes a file
    in one pass instead of one error per run."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        key = key if len(key) <= EXCERPT_CHARS else key[:EXCERPT_CHARS - 3] + "..."  # a key is user text too
        self.items.append(f"{key}: {message}")

    def check(self) -> None:
        if self.items:
            raise MerbenchError(f"{self.source}: {'; '.join(self.items)}")


def validate(recipe: dict, source: str) -> dict:
    """Check every key, kind and range and fill defaults; returns the resolved recipe (a new
    dict). Every problem of the recipe is reported in one MerbenchError."""
    problems = Problems(source)
    for key in recipe:
        if key not in SECTIONS[1:]:
            problems.add(str(key), f"unknown section{closest(str(key), SECTIONS[1:])}; valid: {', '.join(SECTIONS[1:])}")
    resolved: dict[str, Any] = {
        "dataset": _registered_section(recipe, "dataset", DATASETS, problems),
        "model": _registered_section(recipe, "model", MODELS, problems),
        "train": _fixed_section(recipe.get("train") or {}, TRAIN_DEFAULTS, "train", problems, TRAIN_RANGES),
        "eval": _fixed_section(recipe.get("eval") or {}, EVAL_DEFAULTS, "eval", problems),
    }
    train = resolved["train"]
    if isinstance(train.get("aux_weights"), dict):
        for key, weight in train["aux_weights"].items():
            if not isinstance(weight, (int, float)) or isinstance(weight, bool):
                problems.add(f"train.aux_weights.{key}", f"expected a number, got {excerpt(weight)}")
            elif NON_NEGATIVE.problem(weight):
                problems.add(f"train.aux_weights.{key}", NON_NEGATIVE.problem(weight))
    for key, choices in (("optimizer", OPTIMIZERS), ("lr_schedule_on", LR_SCHEDULE_ON)):
        value = train.get(key)
        if isinstance(value, str) and value not in choices:
            problems.add(f"train.{key}", f"expected one of {', '.join(choices)}, got "
                         f"{excerpt(value)}{closest(value, choices)}")
    device = train.get("device")
    if isinstance(device, str) and device not in ("auto", "cpu") and not device.startswith("cuda"):
        problems.add("train.device", f"expected auto, cpu or cuda[:N], got {excerpt(device)}")
    splits = resolved["eval"].get("splits")
    for split in splits if isinstance(splits, list) else []:
        if split not in SPLITS:
            problems.add("eval.splits", f"unknown split {excerpt(split)}{closest(str(split), SPLITS)}; "
                                        f"valid: {', '.join(SPLITS)}")
    problems.check()
    return resolved


def _registered_section(recipe: dict, section: str, registry, problems: Problems) -> dict:
    """``dataset`` or ``model``: a registered name and its arguments, checked against the
    registered function's signature and the arguments' ranges (``merbench.ranges``)."""
    values = recipe.get(section)
    if not isinstance(values, dict) or "name" not in values:
        problems.add(f"{section}.name", f"required (a registered {section} name)")
        return {}
    args = dict(values)
    name = args.pop("name")
    if not isinstance(name, str):
        problems.add(f"{section}.name", f"expected one {section} name (a string), got {excerpt(name)}")
        return {}
    if name not in registry:
        problems.add(f"{section}.name", f"unknown {section} {excerpt(name)}{closest(name[:EXCERPT_CHARS], registry.names())}; "
                                        f"valid: {registry.listed()}{registry.hint}")
        return {}
    if section == "dataset":
        modalities = args.pop("modalities", list(MODALITIES))
        if (not isinstance(modalities, list) or not modalities
                or any(not isinstance(m, str) or m not in MODALITIES for m in modalities)
                or len(set(modalities)) != len(modalities)):
            bad = next((m for m in modalities if m not in MODALITIES), modalities) \
                if isinstance(modalities, list) and all(isinstance(m, str) for m in modalities) else modalities
            problems.add("dataset.modalities", f"expected a non-empty list of distinct {', '.join(MODALITIES)}, "
                                               f"got {excerpt(bad)}{closest(str(bad), MODALITIES)}")
        defaults = keyword_defaults(registry.get(name))
    else:
        # start-up: torch only when this runs
        from merbench.models.build import model_defaults  # models import torch: only when needed

        defaults = model_defaults(name)
    ranges = argument_ranges(registry.get(name), defaults)
    choices = literal_choices(registry.get(name))
    for key, text in kwargs_problems(defaults, args, f"{section} {name!r}", ranges, choices):
        problems.add(f"{section}.{key}", text)
    if section == "dataset":
        chosen = modalities if isinstance(modalities, list) else []
        return {"name": name, "modalities": [m for m in MODALITIES if m in chosen], **args}
    return {"name": name, **args}


def _fixed_section(section: Any, defaults: dict, where: str, problems: Problems,
                   ranges: dict[str, Range] | None = None) -> dict:
    """A section with fixed keys (``train``, ``eval``): unknown keys, wrong kinds and values
    out of range are problems; returns the section with defaults filled in."""
    if not isinstance(section, dict):
        problems.add(where, f"expected a mapping, got {excerpt(section)}")
        return copy.deepcopy(defaults)
    for key, value in section.items():
        if key not in defaults:
            problems.add(f"{where}.{key}", f"unknown key{closest(str(key), defaults)}; valid: {', '.join(defaults)}")
        elif not same_type(value, defaults[key]):
            problems.add(f"{where}.{key}", f"expected {type(defaults[key]).__name__}, got {excerpt(value)}")
        elif ranges and key in ranges and ranges[key].problem(value):
            problems.add(f"{where}.{key}", ranges[key].problem(value))
    return {**copy.deepcopy(defaults), **copy.deepcopy(section)}


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise MerbenchError(f"--set {text}: expected KEY.PATH=VALUE, e.g. model.hidden=64")
    key, raw = text.split("=", 1)
    path = key.strip().split(".")
    if len(path) < 2 or not all(path):
        raise MerbenchError(f"--set {text}: expected SECTION.KEY=VALUE, e.g. train.seed=3")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def set_value(recipe: dict, path: list[str], value: Any, where: str) -> None:
    """``recipe[path[0]]...[path[-1]] = value`` in place (``--set`` and the Python API's overrides)."""
    node = recipe
    for part in path[:-1]:
        if not isinstance(node.get(part, {}), dict):
            raise MerbenchError(f"{where}: {part} is not a section")
        node = node.setdefault(part, {})
    node[path[-1]] = value


def override_pairs(texts: list[str]) -> dict[str, Any]:
    """``--set`` texts -> ``{"model.hidden": 64}``, the form the Python API takes (later wins)."""
    return {".".join(path): value for path, value in map(parse_override, texts)}


def override_text(item: str | tuple[str, Any]) -> str:
    """An override as ``--set`` would spell it (error messages)."""
    if isinstance(item, str):
        return item
    key, value = item
    return f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"


def apply_overrides(recipe: dict, overrides: list) -> dict:
    """``overrides``: ``--set`` texts (``"model.hidden=64"``, the value read as YAML) or, from
    the Python API, ``("model.hidden", 64)`` pairs (the value taken as it is)."""
    out = copy.deepcopy(recipe)
    for item in overrides:
        if isinstance(item, str):
            path, value = parse_override(item)
        else:
            path, value = parse_override(f"{item[0]}=")[0], item[1]
        set_value(out, path, value, f"--set {override_text(item)}")
    return out


def load_recipe(path: Path | str, overrides: list[str] | None = None) -> dict:
    """Read, merge ``extends``, apply ``--set`` overrides, validate. The one entry point."""
    raw = read_recipe_file(Path(path))
    resolved = validate(raw, str(path))  # the file must stand on its own
    if not overrides:
        return resolved
    return validate(apply_overrides(raw, overrides), f"--set {' '.join(map(override_text, overrides))}")


def recipe_hash(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
