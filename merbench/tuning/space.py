"""Search spaces: which recipe keys ``merbench tune`` samples, and from what.

A space file (``recipes/spaces/<model>.yaml``, or ``--space FILE``) maps recipe keys, spelt as
``--set`` spells them, to what a trial may give them::

    train.lr: {low: 1.0e-4, high: 3.0e-3, log: true}   # float, sampled on a log scale
    model.hidden: {low: 64, high: 256, step: 64}        # int (the key's value is an int)
    model.dropout: {low: 0.0, high: 0.5}               # float, uniform
    train.batch_size: [32, 64, 128]                    # categorical (short for {choices: [...]})

A range's kind follows the recipe key it sets: a key whose value is an integer (sizes,
heads, batch size) is sampled as an integer, any other number as a float. The whole file is
checked against the recipe it tunes before any trial: an unknown key (with the closest
name), a key a search must not set (the seed, the data, the evaluation splits), an empty
range, a log range reaching zero, a range end or a choice the recipe refuses (a dropout of
1.0, a learning rate of 0). Every problem is reported at once in one line
(``recipe.Problems``).

Nothing here imports optuna: ``Param.suggest`` calls the ``suggest_*`` methods of the trial
it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from merbench.errors import MerbenchError, excerpt
from merbench.recipe import Problems, Recipe, apply_overrides, load_yaml_file, validate
from merbench.recipe_paths import LOCAL, PACKAGED
from merbench.registry import closest
from merbench.models.build import model_defaults

SPACES = "spaces"  # recipes/spaces/<model>.yaml
SPEC_KEYS = ("low", "high", "log", "step", "choices")
# Keys a search must leave alone, and why (a trial that set them would not be a fair trial).
FORBIDDEN = {
    "train.seed": "the seed is not a hyperparameter (--seeds-final gives the final runs their seeds)",
    "train.threads": "set by --threads for every trial alike",
    "train.device": "where a trial runs does not change what it learns",
    "train.selection_metric": "it is the study's objective; change it in the recipe",
    "eval": "trials never score the test split; the final runs score what the recipe says",
    "dataset": "every trial must see the same data",
}


@dataclass
class Param:
    """One searched recipe key: a range (``low``..``high``, ``log``, ``step``) or ``choices``."""

    key: str  # dotted recipe key, as --set spells it
    kind: str  # "float" | "int" | "categorical"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: list = field(default_factory=list)

    def suggest(self, trial) -> Any:
        """The value ``trial`` (an optuna.Trial) gives this key."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, self.choices)
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> dict:
        if self.kind == "categorical":
            return {"choices": list(self.choices)}
        out = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass
class Space:
    source: str
    params: list[Param]

    def describe(self) -> dict:
        """The space as its file would write it (tune.json, the study's identity)."""
        return {p.key: {"kind": p.kind, **p.describe()} for p in self.params}


def space_path(model: str, root: Path | str | None = None) -> Path:
    """``<root>/spaces/<model>.yaml`` when ``--recipes root`` is given; else ``./recipes/spaces``
    when it holds one; else the space packaged with merbench (as recipes are found)."""
    candidates = [Path(root) / SPACES / f"{model}.yaml"] if root is not None else \
        [LOCAL / SPACES / f"{model}.yaml", PACKAGED / SPACES / f"{model}.yaml"]
    for path in candidates:
        if path.is_file():
            return path
    shipped = sorted(p.stem for p in (PACKAGED / SPACES).glob("*.yaml"))
    raise MerbenchError(f"{candidates[0]}: no search space for model {model!r} (write one, or pass --space FILE; "
                        f"spaces shipped: {', '.join(shipped)})")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _current(raw: dict, key: str) -> Any:
    """The value the validated recipe gives ``key`` (its type decides int or float sampling)."""
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _defaults(resolved: Recipe) -> dict:
    """The resolved recipe's mapping with the model's constructor defaults filled in."""
    out = resolved.as_dict()
    out["model"] = {**model_defaults(resolved.model.name), **out["model"]}
    return out


def _refused(raw: dict, key: str, value: Any) -> str | None:
    """What recipe validation says when ``key`` is set to ``value`` (None: accepted)."""
    try:
        validate(apply_overrides(raw, [(key, value)]), "recipe")
    except MerbenchError as e:
        text = str(e).removeprefix("recipe: ")
        return text.removeprefix(f"{key}: ")
    return None


def parse_space(data: Any, raw_recipe: dict, source: str) -> Space:
    """The space ``data`` (a YAML mapping) checked against ``raw_recipe`` (the recipe it tunes,
    ``extends`` merged, before validation); every problem in one MerbenchError."""
    problems = Problems(source)
    if not isinstance(data, dict) or not data:
        raise MerbenchError(f"{source}: expected a mapping of recipe keys (e.g. train.lr) to ranges or "
                            f"choices, got {excerpt(data)}")
    defaults = _defaults(validate(raw_recipe, "recipe"))
    params = []
    for key, spec in data.items():
        key = str(key)
        reason = FORBIDDEN.get(key) or FORBIDDEN.get(key.split(".")[0])
        if reason:
            problems.add(key, f"not searchable: {reason}")
            continue
        parts = key.split(".")
        if len(parts) != 2 or parts[0] not in ("train", "model"):
            problems.add(key, "expected train.KEY or model.KEY (a recipe key as --set spells it)")
            continue
        current = _current(defaults, key)
        if current is None:
            section = defaults[parts[0]]
            valid = [k for k in section if k != "name"]
            problems.add(key, f"unknown key{closest(parts[1], valid)}; valid: {', '.join(valid)}")
            continue
        param = _param(key, spec, current, problems)
        if param is None:
            continue
        values = param.choices if param.kind == "categorical" else [param.low, param.high]
        bad = [(v, why) for v, why in ((v, _refused(raw_recipe, key, v)) for v in values) if why]
        for _, why in bad:
            problems.add(key, why)  # e.g. "1.0 is not in [0, 1)", as the recipe check says it
        if not bad:
            params.append(param)
    problems.check()
    return Space(source, params)


def _param(key: str, spec: Any, current: Any, problems: Problems) -> Param | None:
    """One key's spec as a Param, or None after adding its problems."""
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        problems.add(key, f"expected {{low: .., high: ..}} (log: true, step: ..) or a list of choices, "
                          f"got {excerpt(spec)}")
        return None
    unknown = [str(k) for k in spec if k not in SPEC_KEYS]
    for k in unknown:
        problems.add(f"{key}.{k}", f"unknown key{closest(k, SPEC_KEYS)}; valid: {', '.join(SPEC_KEYS)}")
    if unknown:
        return None
    if "choices" in spec:
        choices = spec["choices"]
        others = [k for k in spec if k != "choices"]
        if others:
            problems.add(key, f"choices cannot be given with {', '.join(others)}")
        elif not isinstance(choices, list) or not choices:
            problems.add(key, f"choices: expected a non-empty list, got {excerpt(choices)}")
        elif any(not (c is None or isinstance(c, (bool, int, float, str))) for c in choices):
            problems.add(key, f"choices: expected numbers, strings or booleans, got {excerpt(choices)}")
        elif len({yaml.safe_dump(c) for c in choices}) != len(choices):
            problems.add(key, f"choices: {excerpt(choices)} repeats a value")
        else:
            return Param(key, "categorical", choices=list(choices))
        return None
    missing = [k for k in ("low", "high") if k not in spec]
    if missing:
        problems.add(key, f"missing {' and '.join(missing)} (a range needs low and high; or give choices)")
        return None
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    if not _number(current):
        problems.add(key, f"a range needs a numeric key; {key} is {excerpt(current)}: give choices instead")
        return None
    ok = True
    for name, value in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
        if not _number(value) or not math.isfinite(value):
            problems.add(f"{key}.{name}", f"expected a finite number, got {excerpt(value)}")
            ok = False
    if not isinstance(log, bool):
        problems.add(f"{key}.log", f"expected true or false, got {excerpt(log)}")
        ok = False
    if not ok:
        return None
    integer = isinstance(current, int)
    if integer and not all(isinstance(v, int) for v in (low, high) + ((step,) if step is not None else ())):
        problems.add(key, f"{key} is an integer: expected whole-number low, high and step, got "
                          f"low {excerpt(low)}, high {excerpt(high)}" + (f", step {excerpt(step)}" if step else ""))
        return None
    if low >= high:
        problems.add(key, f"empty range: low {excerpt(low)} must be below high {excerpt(high)}")
        return None
    if log and low <= 0:
        problems.add(key, f"log: true needs a positive low (the log of {excerpt(low)} is undefined)")
        return None
    if log and step is not None:
        problems.add(key, "step and log: true cannot be combined (Optuna samples a log range continuously)")
        return None
    if step is not None and step <= 0:
        problems.add(f"{key}.step", f"expected a positive step, got {excerpt(step)}")
        return None
    if integer:
        return Param(key, "int", int(low), int(high), log, step)
    return Param(key, "float", float(low), float(high), log, None if step is None else float(step))


def load_space(path: Path | str, raw_recipe: dict) -> Space:
    """Read and check the space file ``path`` against ``raw_recipe``."""
    path = Path(path)
    data = load_yaml_file(path, "a search space file (.yaml)", "no such search space file")
    return parse_space(data, raw_recipe, str(path))
