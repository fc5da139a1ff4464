"""Build a registered model from its name, the corpus's dims and recipe arguments."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from merbench.errors import MerbenchError
from merbench.models.base import MerModel
from merbench.registry import MODELS, closest

# Constructor parameters the training loop fills in; a recipe never sets them.
RESERVED = ("dims", "num_outputs")


def model_class(name: str) -> type[MerModel]:
    factory = MODELS.get(name)
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory


def model_defaults(name: str) -> dict[str, Any]:
    """Every recipe-settable argument with its default for this registered name."""
    factory = MODELS.get(name)
    params = inspect.signature(factory).parameters
    return {k: p.default for k, p in params.items() if k not in RESERVED and p.kind == p.KEYWORD_ONLY}


def check_model_args(name: str, args: dict[str, Any], where: str) -> None:
    """Unknown argument or wrong type: MerbenchError naming ``where`` and the closest name."""
    defaults = model_defaults(name)
    for key, value in args.items():
        if key not in defaults:
            raise MerbenchError(
                f"{where}.{key}: unknown argument of model {name!r}{closest(key, defaults)}; "
                f"valid: {', '.join(sorted(defaults))}"
            )
        default = defaults[key]
        if default is not None and not _same_type(value, default):
            raise MerbenchError(
                f"{where}.{key}: expected {type(default).__name__}, got {value!r}"
            )


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def build_model(name: str, dims: dict[str, int], num_outputs: int, **args: Any) -> MerModel:
    check_model_args(name, args, "model")
    return MODELS.get(name)(dims, num_outputs, **args)


def components(name: str) -> tuple[str, ...]:
    return model_class(name).components
