"""Check keyword arguments from a recipe against a registered function's signature."""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any, Callable

from merbench.errors import MerbenchError, excerpt
from merbench.ranges import FINITE, Range
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


def literal_choices(factory: Callable[..., Any]) -> dict[str, tuple]:
    """The allowed values of arguments annotated ``Literal[...]`` (e.g. ``fusion: Literal["early",
    "late"]``), so a misspelt choice stops at validation rather than in the constructor."""
    while isinstance(factory, functools.partial):
        factory = factory.func
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation that names a type only imported for type checkers
        return {}
    return {k: typing.get_args(h) for k, h in hints.items() if typing.get_origin(h) is typing.Literal}


def kwargs_problems(defaults: dict[str, Any], args: dict[str, Any], owner: str,
                    ranges: dict[str, Range] | None = None,
                    choices: dict[str, tuple] | None = None) -> list[tuple[str, str]]:
    """Every (key, problem) of ``args``: unknown key, wrong type, not a choice, out of range,
    missing."""
    problems = []
    for key, value in args.items():
        if key not in defaults:
            problems.append((key, f"unknown argument of {owner}{closest(key, defaults)}; "
                                  f"valid: {', '.join(sorted(defaults))}"))
        elif not same_type(value, defaults[key]):
            problems.append((key, f"expected {type(defaults[key]).__name__}, got {excerpt(value)}"))
        elif choices and key in choices and value not in choices[key]:
            problems.append((key, f"expected one of {', '.join(map(str, choices[key]))}, got {excerpt(value)}"
                                  f"{closest(str(value)[:80], [str(c) for c in choices[key]])}"))
        else:
            problem = ((ranges or {}).get(key) or FINITE).problem(value)
            if problem:
                problems.append((key, problem))
    for key, default in defaults.items():
        if default is inspect.Parameter.empty and key not in args:
            problems.append((key, f"required by {owner} but not given"))
    return problems


def check_kwargs(defaults: dict[str, Any], args: dict[str, Any], where: str, owner: str,
                 ranges: dict[str, Range] | None = None) -> None:
    """Unknown key, wrong type or a value out of range -> one MerbenchError naming every
    ``where.key`` at fault (and the closest valid name)."""
    problems = kwargs_problems(defaults, args, owner, ranges)
    if problems:
        raise MerbenchError("; ".join(f"{where}.{key}: {text}" for key, text in problems))
