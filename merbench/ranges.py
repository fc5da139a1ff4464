"""Ranges of numeric recipe values, and the naming conventions that give an argument its range.

A value can have the right type and still be unable to run: a NaN learning rate, a dropout of
1.5, a hidden size of 0. Every number a recipe sets is checked against a range before any work.
The fixed ``train`` keys list theirs in ``merbench.recipe``; a model's or dataset's arguments
get theirs from their names and defaults (``argument_range``), so a new model is covered
without listing anything; an argument whose meaning departs from the convention is declared on
the model class (``MerModel.arg_ranges``), e.g. COGMEN's ``heads: 0`` = the authors' rule.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

from merbench.errors import excerpt


@dataclass(frozen=True)
class Range:
    """An interval of allowed numbers; ``None`` bounds are open to infinity."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range (one phrase naming it), or None when it is fine."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None  # the type check reports wrong kinds
        if not math.isfinite(value):
            return f"{excerpt(value)} is not a finite number"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            return f"{excerpt(value)} is not {self}"
        return None

    def __str__(self) -> str:
        if self.low is None and self.high is None:
            return "a finite number"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


FINITE = Range()
SIZE = Range(1)  # sizes and counts: hidden units, heads, layers, batch size, epochs
NON_NEGATIVE = Range(0)  # seeds, folds, weight decay, patience, thread counts (0 = default)
POSITIVE = Range(0, low_open=True)  # learning rate, temperatures, epsilons
PROBABILITY = Range(0, 1, high_open=True)  # dropout: 1 would drop everything
FACTOR = Range(0, 1, low_open=True, high_open=True)  # a multiplier that must shrink: lr_factor
FRACTION = FACTOR  # a share of the data that leaves some for the rest: valid_fraction
WINDOW = Range(-1)  # graph windows: utterances before / after, -1 = to the dialogue's edge


def argument_range(name: str, default: Any) -> Range | None:
    """The conventional range of a constructor argument from its name and default's type.

    Integers are sizes (>= 1) unless named ``seed`` / ``fold`` (>= 0) or ``window_*`` (>= -1);
    floats are finite, and in [0, 1) when named ``*dropout*``, in (0, 1) when named
    ``*_fraction``, > 0 when named ``*temperature`` or ``*eps``. Booleans, strings and other
    kinds have no range.
    """
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return None
    if isinstance(default, int):
        if name in ("seed", "fold") or name.endswith("_seed"):
            return NON_NEGATIVE
        if name.startswith("window_"):
            return WINDOW
        return SIZE
    if "dropout" in name:
        return PROBABILITY
    if name.endswith("_fraction"):
        return FRACTION
    if name.endswith(("temperature", "eps")):
        return POSITIVE
    return FINITE


def declared_ranges(factory: Callable[..., Any]) -> dict[str, Range]:
    """Ranges a model class declares for arguments that depart from the convention."""
    while isinstance(factory, functools.partial):
        factory = factory.func
    return dict(getattr(factory, "arg_ranges", {}) or {})


def argument_ranges(factory: Callable[..., Any], defaults: dict[str, Any]) -> dict[str, Range]:
    """Every ranged argument of ``factory``: declared ones first, then the convention."""
    declared = declared_ranges(factory)
    out = {}
    for name, default in defaults.items():
        rng = declared.get(name) or argument_range(name, default)
        if rng is not None:
            out[name] = rng
    return out
