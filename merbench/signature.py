"""Check keyword arguments from a recipe against a registered function's signature."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from merbench.errors import MerbenchError
from merbench.registry import closest


def keyword_defaults(factory: Callable[..., Any], reserved: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every settable keyword argument with its default (``inspect.Parameter.empty`` if required)."""
    params = inspect.signature(factory).parameters
    return {
        k: p.default for k, p in params.items()
        if k not in reserved and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def same_type(value: Any, default: Any) -> bool:
    if default is None or default is inspect.Parameter.empty:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def check_kwargs(defaults: dict[str, Any], args: dict[str, Any], where: str, owner: str) -> None:
    """Unknown key or wrong type -> MerbenchError naming ``where.key`` and the closest name."""
    for key, value in args.items():
        if key not in defaults:
            raise MerbenchError(
                f"{where}.{key}: unknown argument of {owner}{closest(key, defaults)}; "
                f"valid: {', '.join(sorted(defaults))}"
            )
        if not same_type(value, defaults[key]):
            raise MerbenchError(
                f"{where}.{key}: expected {type(defaults[key]).__name__}, got {value!r}"
            )
    missing = [k for k, d in defaults.items() if d is inspect.Parameter.empty and k not in args]
    if missing:
        raise MerbenchError(f"{where}.{missing[0]}: required by {owner} but not given")
