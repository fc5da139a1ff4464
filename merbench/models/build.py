"""Build a registered model from its name, the corpus's dims and recipe arguments."""

from __future__ import annotations

import functools
from typing import Any

from merbench.errors import MerbenchError
from merbench.models.base import MerModel
from merbench.optional import MissingDependency, missing_for
from merbench.ranges import argument_ranges
from merbench.registry import MODELS
from merbench.signature import check_kwargs, keyword_defaults

# Constructor parameters the training loop fills in; a recipe never sets them.
RESERVED = ("dims", "num_outputs")


def model_class(name: str) -> type[MerModel]:
    factory = MODELS.get(name)
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory


def model_defaults(name: str) -> dict[str, Any]:
    """Every recipe-settable argument with its default for this registered name."""
    return keyword_defaults(MODELS.get(name), RESERVED)


def check_model_args(name: str, args: dict[str, Any], where: str) -> None:
    """Unknown argument or wrong type: MerbenchError naming ``where`` and the closest name."""
    defaults = model_defaults(name)
    check_kwargs(defaults, args, where, f"model {name!r}", argument_ranges(MODELS.get(name), defaults))


def check_available(name: str) -> None:
    """MissingDependency (one line naming the extra) when the model's optional library is absent."""
    module = missing_for(model_class(name))
    if module:
        raise MissingDependency(module, f"model {name!r}")


def build_model(name: str, dims: dict[str, int], num_outputs: int, **args: Any) -> MerModel:
    check_available(name)
    check_model_args(name, args, "model")
    try:
        return MODELS.get(name)(dims, num_outputs, **args)
    except ValueError as e:  # a constructor's own check of its arguments (e.g. hidden divisible by heads)
        raise MerbenchError(f"model {name!r}: {e}") from None


def built_components(name: str, modalities, args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(built, unbuilt): the switches that are on in ``args`` (defaults filled in) split by
    ``active_components(modalities)``. ``unbuilt`` is what a run on these modalities went
    without although its recipe asked for it (e.g. HRDF-MER's CAA, CMDF, gate and CLC loss on
    text alone): result.json records both and tables mark such runs."""
    cls = model_class(name)
    resolved = {**model_defaults(name), **args}
    on = [c for c in cls.components if resolved.get(c) is True]
    active = set(cls.active_components(list(modalities)))
    return [c for c in on if c in active], [c for c in on if c not in active]


def fill_components(result: dict) -> dict:
    """A result.json written before ``model.active_components`` / ``inactive_components`` were
    recorded gets them from its resolved arguments and modalities with today's model code, so
    ``merbench table`` marks old runs too; a model no longer registered is left as it is."""
    model = result.get("model") or {}
    if "inactive_components" in model or model.get("name") not in MODELS:
        return result
    built, unbuilt = built_components(model["name"], result["dataset"]["modalities"], model.get("args") or {})
    model.update(active_components=built, inactive_components=unbuilt)
    return result
