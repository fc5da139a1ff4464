"""merbench.ranges with cases written out by hand, never generated from the range code: the
range each naming convention gives, the edges of every range, and recipes whose value sits
exactly on an excluded bound (a temperature or epsilon of 0)."""

from __future__ import annotations

import math

import pytest

from merbench.ranges import (FACTOR, FINITE, NON_NEGATIVE, POSITIVE, PROBABILITY, SIZE, WINDOW, Range,
                             argument_range, argument_ranges)

from helpers import cli, one_line_error, tiny_recipe, write_recipe

CONVENTION = [
    ("hidden", 64, SIZE), ("heads", 4, SIZE), ("frame_steps", 8, SIZE),  # an int ending in "eps" is a size
    ("seed", 0, NON_NEGATIVE), ("fold", 1, NON_NEGATIVE), ("data_seed", 3, NON_NEGATIVE),
    ("window_past", -1, WINDOW), ("window_future", 10, WINDOW),
    ("dropout", 0.1, PROBABILITY), ("attn_dropout", 0.0, PROBABILITY),
    ("valid_fraction", 0.1, FACTOR),
    ("temperature", 0.1, POSITIVE), ("clc_temperature", 0.07, POSITIVE), ("cca_eps", 1e-3, POSITIVE),
    ("noise", 0.5, FINITE), ("margin", -1.0, FINITE),
    ("fusion", "late", None), ("attention", True, None), ("dims", [1, 2], None), ("heads_opt", None, None),
]


@pytest.mark.parametrize("name, default, expected", CONVENTION, ids=lambda v: str(v))
def test_range_of_each_naming_convention(name, default, expected):
    assert argument_range(name, default) == expected


# (range, values inside, values outside): the edges, written out
EDGES = [
    (SIZE, [1, 2, 10**6], [0, -1, 0.5]),
    (NON_NEGATIVE, [0, 0.0, 3], [-1, -1e-9]),
    (POSITIVE, [1e-12, 0.1, 5], [0, 0.0, -0.1]),
    (PROBABILITY, [0, 0.0, 0.999], [1, 1.0, -0.01, 1.5]),
    (FACTOR, [1e-9, 0.5, 0.999], [0, 0.0, 1, 1.0]),
    (WINDOW, [-1, 0, 7], [-2, -1.5]),
    (FINITE, [-1e300, 0, 1e300], [math.nan, math.inf, -math.inf]),
]


@pytest.mark.parametrize("rng, inside, outside", EDGES, ids=lambda v: str(v)[:20])
def test_range_edges(rng, inside, outside):
    for value in inside:
        assert rng.problem(value) is None, value
    for value in outside:
        assert rng.problem(value), value
    for not_a_number in ("0", None, True, False, [1]):
        assert rng.problem(not_a_number) is None  # the type check reports these


def test_range_messages():
    assert str(SIZE) == ">= 1" and str(POSITIVE) == "> 0" and str(FINITE) == "a finite number"
    assert str(PROBABILITY) == "in [0, 1)" and str(FACTOR) == "in (0, 1)"
    assert str(Range(high=3)) == "<= 3" and str(Range(high=0.5, high_open=True)) == "< 0.5"
    assert str(Range(0.5, 2)) == "in [0.5, 2]"
    assert POSITIVE.problem(0.0) == "0.0 is not > 0"
    assert PROBABILITY.problem(1.5) == "1.5 is not in [0, 1)"
    assert FINITE.problem(math.nan) == "nan is not a finite number"
    assert Range(high=3).problem(3) is None and Range(high=3).problem(4) == "4 is not <= 3"


def test_declared_ranges_come_before_the_convention():
    class Model:
        arg_ranges = {"heads": NON_NEGATIVE}

    def plain(hidden=4, heads=2, name="x"):
        return None

    assert argument_ranges(Model, {"heads": 0, "hidden": 8, "name": "x"}) == {"heads": NON_NEGATIVE, "hidden": SIZE}
    assert argument_ranges(plain, {"heads": 2, "hidden": 8, "name": "x"}) == {"heads": SIZE, "hidden": SIZE}


# Every registered model argument named *temperature / *eps, with values on and past the bound.
ZERO_EXCLUDED = [("mcn_cl_tiny", "temperature"), ("hrdf_mer_tiny", "clc_temperature"), ("iccn_tiny", "cca_eps")]


@pytest.mark.parametrize("model, arg", ZERO_EXCLUDED)
@pytest.mark.parametrize("value", [0.0, -0.1])
def test_temperature_and_epsilon_must_be_positive(tmp_path, model, arg, value):
    recipe = tiny_recipe(model)
    recipe["model"][arg] = value
    path = write_recipe(tmp_path / "r.yaml", recipe)
    line = one_line_error(cli("train", path, "--out", tmp_path / "runs", "--quiet"))
    assert f"model.{arg}: {value} is not > 0" in line, line
    assert not (tmp_path / "runs").exists()


def test_bounds_print_as_written_and_partials_keep_their_declared_ranges():
    import functools

    assert str(Range(1.0)) == ">= 1" and str(Range(0.0, 2.5)) == "in [0, 2.5]"

    class Model:
        arg_ranges = {"heads": NON_NEGATIVE}

    tiny = functools.partial(functools.partial(Model, hidden=3), heads=0)  # a registered tiny variant
    assert argument_ranges(tiny, {"heads": 0, "hidden": 3}) == {"heads": NON_NEGATIVE, "hidden": SIZE}
