"""Recipes: YAML with one ``extends`` parent, validated strictly before any work.

Sections: ``dataset`` (registry name, ``modalities``, the dataset's arguments), ``model``
(registry name and constructor arguments), ``train`` and ``eval`` (fixed keys below).
Anything unknown stops the run naming the file, the key path and the closest valid name.
``--set a.b=value`` overrides go through the same validation.

``validate`` checks a recipe once, collecting every problem of the file into one line
(``Problems``), and builds the typed ``Recipe``: ``DatasetSpec`` (with ``FeatureSpec`` per
extractor in ``dataset.features``), ``ModelSpec``, ``TrainOptions``, ``EvalOptions``. The
resolved mapping as written stays in ``Recipe.data``: ``recipe.yaml`` and the run id hash it.
``read_back`` types a recipe merbench wrote (result.json, a grid manifest) without checking
it again against today's registries, so old files still read.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from merbench.data.types import MODALITIES
from merbench.device import DEFAULT_THREADS
from merbench.errors import EXCERPT_CHARS, MerbenchError, excerpt, read_text
from merbench.ranges import FACTOR, NON_NEGATIVE, POSITIVE, PROBABILITY, SIZE, Range, argument_ranges
from merbench.recipe_paths import find_recipe
from merbench.registry import DATASETS, EXTRACTORS, MODELS, closest
from merbench.signature import keyword_defaults, kwargs_problems, literal_choices, same_type

SECTIONS = ("extends", "dataset", "model", "train", "eval")
OPTIMIZERS = ("adam", "adamw")  # torch.optim.Adam / torch.optim.AdamW
LR_SCHEDULE_ON = ("selection", "loss")  # the selection metric / the validation task loss
SPLITS = ("train", "valid", "test")


def _key(default: Any, rng: Range | None = None, choices: tuple[str, ...] = ()) -> Any:
    """A fixed recipe key: its default (which gives its type), its range and its choices."""
    meta = {"range": rng, "choices": choices}
    if isinstance(default, dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainOptions:
    """The ``train`` section: every key with its default, type and range, in one place.

    Defaults from the HFF paper (section 4.1): AdamW, lr 3e-4, batch 64, at most 50 epochs,
    early stopping after 5 epochs without improvement, ReduceLROnPlateau, gradient clipping.
    A NaN or infinity is never allowed (``merbench.ranges``).
    """

    seed: int = _key(0, NON_NEGATIVE)
    lr: float = _key(3e-4, POSITIVE)
    # adamw: decoupled weight decay; adam: weight_decay is L2 in the gradient
    optimizer: str = _key("adamw", choices=OPTIMIZERS)
    weight_decay: float = _key(0.01, NON_NEGATIVE)
    batch_size: int = _key(64, SIZE)  # utterances per batch (utterance-level models)
    dialogue_batch_size: int = _key(8, SIZE)  # dialogues per batch (dialogue-level models)
    max_epochs: int = _key(50, SIZE)
    patience: int = _key(5, SIZE)  # epochs without a better validation score; 0 would train none
    grad_clip: float = _key(1.0, NON_NEGATIVE)  # 0 = no clipping
    class_weights: bool = _key(False)
    # z-score every feature dimension with the training split's statistics (merbench's option;
    # features at their release's scale otherwise, as the papers' code reads them)
    standardize: bool = _key(False)
    # dropout on every input feature in training (merbench's option, as the contextual bi-GRU
    # reference of the MOSI benchmark has; 0 = off, as in the papers' code)
    input_dropout: float = _key(0.0, PROBABILITY)
    selection_metric: str = _key("auto")  # auto = wf1 (classification) / mae (regression)
    lr_factor: float = _key(0.5, FACTOR)
    lr_patience: int = _key(2, NON_NEGATIVE)
    # what ReduceLROnPlateau follows: the selection metric on valid, or the valid task loss
    lr_schedule_on: str = _key("selection", choices=LR_SCHEDULE_ON)
    aux_weights: dict[str, float] = _key({})  # aux loss name -> weight; unlisted aux losses weigh 1.0
    device: str = _key("auto")  # auto = cuda when present, else cpu
    threads: int = _key(DEFAULT_THREADS, NON_NEGATIVE)  # torch CPU threads (0 = torch's default)

    def aux_weight(self, name: str) -> float:
        return self.aux_weights.get(name, 1.0)


def _defaults(cls) -> dict[str, Any]:
    return {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(cls)}


TRAIN_DEFAULTS: dict[str, Any] = _defaults(TrainOptions)
TRAIN_RANGES: dict[str, Range] = {f.name: f.metadata["range"] for f in fields(TrainOptions) if f.metadata["range"]}
EVAL_DEFAULTS: dict[str, Any] = {"splits": ["valid", "test"]}


@dataclass(frozen=True)
class EvalOptions:
    """The ``eval`` section: the splits scored with the best epoch's weights (valid always)."""

    splits: tuple[str, ...] = ("valid", "test")


@dataclass(frozen=True)
class ModelSpec:
    """The ``model`` section: a registered model and the constructor arguments the recipe sets."""

    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class FeatureSpec:
    """One entry of ``dataset.features``: the extractor of a modality and its options.

    ``finetune``: the text encoder is first fine-tuned with these options (the mapping as
    written, ``threads`` included; checked with the recipe, ``features/options.py``)."""

    modality: str
    name: str
    options: dict[str, Any]
    finetune: dict[str, Any] | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """The ``dataset`` section: a registered dataset, the modalities kept, and its arguments
    (``features``, the extractors of a real dataset, among them; typed in ``features``)."""

    name: str
    modalities: tuple[str, ...]
    args: dict[str, Any]
    features: dict[str, FeatureSpec] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Recipe(Mapping):
    """A validated recipe: typed sections, built and checked once (``validate``).

    ``data`` is the resolved recipe as written (defaults filled in): what ``recipe.yaml``
    holds and ``recipe_hash`` / the run id hash, so neither changes with the types. The
    recipe also reads as that mapping (``recipe["train"]["lr"]``) for code written against
    the dict; to change a recipe, edit ``as_dict()`` and validate it again.
    """

    dataset: DatasetSpec
    model: ModelSpec
    train: TrainOptions
    eval: EvalOptions
    data: dict[str, Any] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """A deep copy of the resolved recipe, free to edit."""
        return copy.deepcopy(self.data)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading floats as YAML 1.2 does: ``5e-5`` and ``1E4`` are numbers
    (PyYAML's YAML 1.1 rules want a dot, ``5.0e-5``, and read ``5e-5`` as a string), and
    refusing a key written twice in one mapping, as YAML 1.2 does (PyYAML keeps the last one
    silently: a second ``model:`` section would train another model than the file seems to
    say). Keys merged in with ``<<`` may still be overridden."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key: the base class reports it
                    break
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"key {key!r} is written twice in one mapping; expected each key once",
                        key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """A recipe file's, a ``--set`` value's or a reference file's YAML (``YamlLoader``)."""
    return yaml.load(text, Loader=YamlLoader)


def load_yaml_file(path: Path, what: str, missing: str) -> Any:
    """A YAML file's content; a missing file (``missing``), one that is not ``what`` or not
    valid YAML is one line naming the file (and the line of the YAML error)."""
    text = read_text(path, what, missing)
    try:
        return load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MerbenchError(f"{path}: not valid YAML{where} ({getattr(e, 'problem', None) or e})") from None


def _load_yaml(path: Path) -> dict:
    try:
        data = load_yaml_file(path, "a recipe file (.yaml)", "no such recipe file")
    except RecursionError:
        raise MerbenchError(f"{path}: not a recipe (YAML nested too deeply)") from None
    if not isinstance(data, dict):
        raise MerbenchError(f"{path}: expected a mapping with sections {', '.join(SECTIONS[1:])}")
    # A section left empty (``train:`` with every key commented out) is YAML's null: no keys.
    return {k: {} if v is None and k in SECTIONS[1:] else v for k, v in data.items()}


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

    def __init__(self, source: str | Callable[[list[str]], str]) -> None:
        self.source = source  # or a function of the keys at fault (overrides_source)
        self.items: list[str] = []
        self.keys: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.keys.append(key)
        key = key if len(key) <= EXCERPT_CHARS else key[:EXCERPT_CHARS - 3] + "..."  # a key is user text too
        self.items.append(f"{key}: {message}")

    def check(self) -> None:
        if self.items:
            source = self.source(self.keys) if callable(self.source) else self.source
            raise MerbenchError(f"{source}: {'; '.join(self.items)}")


def validate(recipe: Mapping, source: str) -> Recipe:
    """Check every key, kind and range, fill defaults and build the typed ``Recipe``. Every
    problem of the recipe is reported in one MerbenchError naming ``source``."""
    if isinstance(recipe, Recipe):
        recipe = recipe.data
    problems = Problems(source)
    for key in recipe:
        if key not in SECTIONS[1:]:
            problems.add(str(key), f"unknown section{closest(str(key), SECTIONS[1:])}; valid: {', '.join(SECTIONS[1:])}")
    dataset = _registered_section(recipe, "dataset", DATASETS, problems)
    model = _registered_section(recipe, "model", MODELS, problems)
    train = _fixed_section(recipe.get("train") or {}, TRAIN_DEFAULTS, "train", problems, TRAIN_RANGES)
    evals = _fixed_section(recipe.get("eval") or {}, EVAL_DEFAULTS, "eval", problems)
    if isinstance(train.get("aux_weights"), dict):
        for key, weight in train["aux_weights"].items():
            if not isinstance(weight, (int, float)) or isinstance(weight, bool):
                problems.add(f"train.aux_weights.{key}", f"expected a number, got {excerpt(weight)}")
            elif NON_NEGATIVE.problem(weight):
                problems.add(f"train.aux_weights.{key}", NON_NEGATIVE.problem(weight))
    for f in fields(TrainOptions):
        value, choices = train.get(f.name), f.metadata["choices"]
        if choices and isinstance(value, str) and value not in choices:
            problems.add(f"train.{f.name}", f"expected one of {', '.join(choices)}, got "
                                            f"{excerpt(value)}{closest(value, choices)}")
    device = train.get("device")
    if isinstance(device, str) and device not in ("auto", "cpu") and not device.startswith("cuda"):
        problems.add("train.device", f"expected auto, cpu or cuda[:N], got {excerpt(device)}")
    splits = evals.get("splits")
    for split in splits if isinstance(splits, list) else []:
        if split not in SPLITS:
            problems.add("eval.splits", f"unknown split {excerpt(split)}{closest(str(split), SPLITS)}; "
                                        f"valid: {', '.join(SPLITS)}")
    features = _feature_specs(dataset, problems) if dataset else {}
    problems.check()
    return _typed({"dataset": dataset, "model": model, "train": train, "eval": evals}, features, train,
                  evals["splits"])


def _typed(data: dict, features: dict[str, FeatureSpec], train: Mapping, splits) -> Recipe:
    """The typed ``Recipe`` of the resolved mapping ``data`` (kept as it is in ``Recipe.data``):
    ``train``, the ``train`` keys ``TrainOptions`` knows, and ``splits`` have been checked."""
    dataset, model = data["dataset"], data["model"]
    return Recipe(
        dataset=DatasetSpec(dataset["name"], tuple(dataset.get("modalities", MODALITIES)),
                            {k: v for k, v in dataset.items() if k not in ("name", "modalities")}, features),
        model=ModelSpec(model["name"], {k: v for k, v in model.items() if k != "name"}),
        train=TrainOptions(**copy.deepcopy(dict(train))),
        eval=EvalOptions(tuple(splits)),
        data=data)


def read_back(data: Any, source: str) -> Recipe:
    """A resolved recipe that merbench wrote, read back (``result.json``'s ``recipe``, a grid
    manifest's cell, a trial's recipe): a typed ``Recipe`` whose ``data`` is the mapping exactly
    as the file holds it, so its hash and the run id are the file's.

    Typed, not validated again: no registry, signature or range is consulted (nothing is
    imported), so a file written by an older merbench whose recipe would no longer validate (a
    model argument renamed since, a train key dropped, a value now out of range) still reads
    for tables, checks and grids; ``Run.corpus()``, which rebuilds the data, validates in full.
    ``train`` / ``eval`` keys the file lacks take today's defaults in the typed sections, and
    keys today's merbench does not know stay in ``data`` only. What readers use must be sound:
    ``dataset`` and ``model`` naming what was trained, ``train`` / ``eval`` mappings whose known
    keys have their kind, well-formed ``modalities`` and ``features``; else one error naming
    ``source`` with every problem."""
    if isinstance(data, Recipe):
        return data
    if not isinstance(data, Mapping):
        raise MerbenchError(f"{source}: expected the resolved recipe (a mapping), got {excerpt(data)}")
    problems = Problems(source)
    for section in ("dataset", "model"):
        values = data.get(section)
        if not isinstance(values, Mapping):
            problems.add(section, f"expected a mapping naming the {section} trained, got {excerpt(values)}")
        elif not isinstance(values.get("name"), str):
            got = f"got {excerpt(values['name'])}" if "name" in values else "missing"
            problems.add(f"{section}.name", f"expected the {section} trained (a name), {got}")
    known = {}
    for section, defaults in (("train", TRAIN_DEFAULTS), ("eval", EVAL_DEFAULTS)):
        values = data.get(section, {})
        if not isinstance(values, Mapping):
            problems.add(section, f"expected a mapping, got {excerpt(values)}")
            continue
        for key, value in values.items():
            if key in defaults and not same_type(value, defaults[key]):
                problems.add(f"{section}.{key}", f"expected {type(defaults[key]).__name__}, got {excerpt(value)}")
        known[section] = {**copy.deepcopy(defaults), **{k: v for k, v in values.items() if k in defaults}}
    dataset = data.get("dataset") if isinstance(data.get("dataset"), Mapping) else {}
    modalities = dataset.get("modalities", list(MODALITIES))
    if not isinstance(modalities, list) or any(m not in MODALITIES for m in modalities):
        problems.add("dataset.modalities", f"expected a list of {', '.join(MODALITIES)}, got {excerpt(modalities)}")
    splits = known.get("eval", {}).get("splits", [])
    if isinstance(splits, list) and any(s not in SPLITS for s in splits):
        problems.add("eval.splits", f"expected a list of {', '.join(SPLITS)}, got {excerpt(splits)}")
    features = {}
    entries = dataset.get("features") or {}
    for modality, spec in entries.items() if isinstance(entries, Mapping) else []:
        parsed = _feature_entry(spec)
        if modality not in MODALITIES or parsed is None:
            problems.add(f"dataset.features.{modality}", f"expected an extractor of audio, text or vision, "
                                                        f"got {excerpt(spec)}")
            continue
        name, options = parsed
        finetune = options.pop("finetune", None)
        features[modality] = FeatureSpec(modality, name, options, finetune)
    if not isinstance(entries, Mapping):
        problems.add("dataset.features", f"expected a mapping of modality -> extractor, got {excerpt(entries)}")
    problems.check()
    return _typed(copy.deepcopy(dict(data)), features, known["train"], splits)


def _feature_entry(spec: Any) -> tuple[str, dict] | None:
    """A ``dataset.features`` entry, ``"minilm"`` or ``{name, **options}``, as (name, options)."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        return spec["name"], {k: v for k, v in spec.items() if k != "name"}
    return None


def as_recipe(recipe: Mapping, source: str = "recipe") -> Recipe:
    """``recipe`` itself when it is a ``Recipe`` (checked once already), else validated."""
    return recipe if isinstance(recipe, Recipe) else validate(recipe, source)


def _registered_section(recipe: Mapping, section: str, registry, problems: Problems) -> dict:
    """``dataset`` or ``model``: a registered name and its arguments, checked against the
    registered function's signature and the arguments' ranges (``merbench.ranges``)."""
    values = recipe.get(section)
    if not isinstance(values, dict) or "name" not in values:
        problems.add(f"{section}.name", f"required (a registered {section} name)")
        return {}
    args = copy.deepcopy(values)
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
            names = [m.strip() for m in bad.split(",")] if isinstance(bad, str) else []
            # names not in a list (``text``, ``audio,text``): the list they meant; else the nearest name
            hint = f" (a list: [{', '.join(names)}])" if names and all(m in MODALITIES for m in names) \
                else closest(str(bad), MODALITIES)
            problems.add("dataset.modalities", f"expected a non-empty list of distinct {', '.join(MODALITIES)}, "
                                               f"got {excerpt(bad)}{hint}")
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


def _feature_specs(dataset: dict, problems: Problems) -> dict[str, FeatureSpec]:
    """``dataset.features``: modality -> an extractor name or ``{name, **options}`` (a text
    entry may add ``finetune: {...}``), each checked against the extractor registry and the
    extractor's signature before any work (fine-tuning and extraction come much later)."""
    features = dataset.get("features")
    if not isinstance(features, dict) or not features:
        return {}  # absent, or the wrong kind: the dataset's signature check reported it
    # start-up: the extractors import torch, only for a recipe that names one
    from merbench.features.build import extractor_options  # start-up: torch
    from merbench.features.options import finetune_problems  # start-up: with the line above

    out = {}
    for modality, spec in features.items():
        where = f"dataset.features.{modality}"
        if modality not in MODALITIES:
            problems.add(where, f"unknown modality{closest(str(modality), MODALITIES)}; valid: {', '.join(MODALITIES)}")
            continue
        parsed = _feature_entry(spec)
        if parsed is None:
            problems.add(where, f"expected an extractor name or a mapping with 'name', got {excerpt(spec)}")
            continue
        name, options = parsed
        valid = [e.name for e in EXTRACTORS.entries() if e.meta["modality"] == modality]
        if name not in EXTRACTORS:
            problems.add(f"{where}.name" if isinstance(spec, dict) else where,
                         f"unknown extractor {excerpt(name)}{closest(name[:EXCERPT_CHARS], valid)}; "
                         f"{modality} extractors: {', '.join(valid)}")
            continue
        if EXTRACTORS.entry(name).meta["modality"] != modality:
            problems.add(where, f"extractor {name!r} is for {EXTRACTORS.entry(name).meta['modality']}, "
                                f"not {modality}; {modality} extractors: {', '.join(valid)}")
            continue
        finetune = options.pop("finetune", None)
        if finetune is not None:
            if modality != "text":
                problems.add(f"{where}.finetune", "only text encoders are fine-tuned")
            elif not isinstance(finetune, dict):
                problems.add(f"{where}.finetune", f"expected a mapping of fine-tuning options, got {excerpt(finetune)}")
            else:
                for key, text in finetune_problems(finetune):
                    problems.add(f"{where}.finetune.{key}", text)
        for key, text in kwargs_problems(extractor_options(name), options, f"extractor {name!r}"):
            problems.add(f"{where}.{key}", text)
        out[modality] = FeatureSpec(modality, name, options, finetune)
    return out


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


def overrides_source(overrides: list, prefix: str = "--set") -> Callable[[list[str]], str]:
    """The source an override's error names: only the overrides whose key is a key at fault,
    or holds or lies under one (all of them when none does, e.g. a problem they caused jointly)."""
    def source(keys: list[str]) -> str:
        texts = [override_text(item) for item in overrides]
        paths = [item[0] if isinstance(item, tuple) else item.split("=", 1)[0].strip() for item in overrides]
        related = [text for text, path in zip(texts, paths)
                   if any(k == path or k.startswith(path + ".") or path.startswith(k + ".") for k in keys)]
        return f"{prefix} {' '.join(related or texts)}"
    return source


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


def load_recipe(path: Path | str, overrides: list | None = None) -> Recipe:
    """Read, merge ``extends``, apply ``--set`` overrides, validate. The one entry point.

    The file is validated alone first, so its own problems name the file, not the overrides."""
    raw = read_recipe_file(Path(path))
    resolved = validate(raw, str(path))  # the file must stand on its own
    if not overrides:
        return resolved
    return validate(apply_overrides(raw, overrides), overrides_source(overrides))


def recipe_hash(recipe: Mapping) -> str:
    """sha256 of the resolved recipe as written (a ``Recipe``'s ``data``)."""
    data = recipe.data if isinstance(recipe, Recipe) else recipe
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
