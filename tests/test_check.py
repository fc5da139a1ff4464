"""The regression check's arithmetic (merbench.check) on groups of results built in memory:
which way a metric may move, the tolerance edge, NaN, missing and new entries."""

from __future__ import annotations

import json
import math

import pytest

from merbench.aggregate import Group
from merbench.check import DEFAULT_TOLERANCE, build_reference, compare, entry_id, load_reference, write_reference
from merbench.errors import MerbenchError


def _group(task: str, model: str = "mlp", split: str = "test", **means) -> Group:
    """Two seeds whose ``metric`` values average to ``means[metric]`` (0.2 apart)."""
    recipe = {"dataset": {"name": f"synthetic_{task}", "modalities": ["audio", "text"]},
              "model": {"name": model}, "train": {"lr": 0.001}}
    results = [{"run_id": f"r{seed}", "dataset": {"task": task},
                "metrics": {split: {k: v + d for k, v in means.items()}}}
               for seed, d in ((0, -0.1), (1, 0.1))]
    return Group("k", recipe, results)


def _statuses(findings):
    return {f.metric: f.status for f in findings}


def test_reference_records_means_tolerances_and_directions():
    ref = build_reference([_group("regression", acc2_has0=80.0, acc7=40.0, mae=0.9)], "test", 1.5, None)
    (entry,) = ref["entries"].values()
    assert entry["label"] == "synthetic_regression/mlp [S+T]" and entry["runs"] == ["r0", "r1"]
    metrics = entry["metrics"]
    assert set(metrics) == {"acc2_has0", "acc7", "mae"}  # the regression defaults
    assert metrics["mae"] == {"reference": 0.9, "tolerance": DEFAULT_TOLERANCE["mae"], "lower_is_better": True, "n": 2}
    assert metrics["acc7"] == {"reference": 40.0, "tolerance": 1.5, "lower_is_better": False, "n": 2}
    cls = build_reference([_group("classification", acc=60.0, wf1=55.0, mae=1.0)], "test", 2.0, ["wf1", "acc"])
    assert list(next(iter(cls["entries"].values()))["metrics"]) == ["wf1", "acc"]


@pytest.mark.parametrize("mae, status", [(0.9, "ok"), (0.5, "ok"), (0.95, "ok"), (0.96, "regression"), (1.4, "regression")])
def test_lower_is_better_metric_fails_when_it_rises(mae, status):
    """MAE 0.9, tolerance 0.05: a fall is an improvement, a rise past 0.95 a regression."""
    ref = build_reference([_group("regression", acc2_has0=80.0, acc7=40.0, mae=0.9)], "test", 1.0, None)
    findings = compare([_group("regression", acc2_has0=80.0, acc7=40.0, mae=mae)], ref)
    assert _statuses(findings) == {"acc2_has0": "ok", "acc7": "ok", "mae": status}
    (found,) = [f for f in findings if f.metric == "mae"]
    assert found.got == pytest.approx(mae) and found.reference == 0.9 and found.tolerance == 0.05


@pytest.mark.parametrize("wf1, status", [(55.0, "ok"), (70.0, "ok"), (54.0, "ok"), (53.9, "regression"), (40.0, "regression")])
def test_higher_is_better_metric_fails_when_it_falls(wf1, status):
    """WF1 55, tolerance 1 point: a rise is fine, a fall past 54 a regression."""
    ref = build_reference([_group("classification", acc=60.0, wf1=55.0)], "test", 1.0, None)
    findings = compare([_group("classification", acc=60.0, wf1=wf1)], ref)
    assert _statuses(findings) == {"acc": "ok", "wf1": status}


def test_nan_missing_and_new_entries():
    ref = build_reference([_group("classification", acc=60.0, wf1=55.0)], "test", 1.0, None)
    assert _statuses(compare([_group("classification", acc=math.nan, wf1=55.0)], ref))["acc"] == "regression"
    # the same recipe without the metric; the reference's split absent
    assert _statuses(compare([_group("classification", acc=60.0)], ref)) == {"acc": "ok", "wf1": "missing"}
    assert set(_statuses(compare([_group("classification", split="valid", acc=60.0, wf1=55.0)], ref)).values()) == {"missing"}
    # another recipe: the reference's entry is missing, the group is new
    group = _group("classification", model="tfn", acc=60.0, wf1=55.0)
    findings = compare([group], ref)
    assert sorted(f.status for f in findings) == ["missing", "missing", "new"]
    (new,) = [f for f in findings if f.status == "new"]
    # a new entry is named by its own identity: label and entry id (issue 24)
    assert new.entry == f"synthetic_classification/tfn [S+T] entry {entry_id(group)}" and new.metric == "-"


def test_reference_split_is_the_one_compared():
    ref = build_reference([_group("classification", split="valid", acc=60.0, wf1=55.0)], "valid", 1.0, None)
    assert ref["split"] == "valid"
    assert set(_statuses(compare([_group("classification", split="valid", acc=60.0, wf1=50.0)], ref)).values()) == {"ok", "regression"}


def test_build_reference_refuses_what_it_cannot_guard():
    group = _group("classification", acc=60.0, wf1=55.0)
    with pytest.raises(MerbenchError, match="--tolerance: -1"):
        build_reference([group], "test", -1.0, None)
    with pytest.raises(MerbenchError, match="--split tset: expected one of"):
        build_reference([group], "tset", 1.0, None)
    with pytest.raises(MerbenchError, match="no results to build a reference from"):
        build_reference([], "test", 1.0, None)
    with pytest.raises(MerbenchError, match="--metric mae: not in the test metrics of synthetic_classification/mlp"):
        build_reference([group], "test", 1.0, ["mae"])
    with pytest.raises(MerbenchError, match="test acc is nan, not a number to guard"):
        build_reference([_group("classification", acc=math.nan, wf1=55.0)], "test", 1.0, None)


def test_written_reference_reads_back_and_bad_entries_are_named(tmp_path):
    ref = build_reference([_group("regression", acc2_has0=80.0, acc7=40.0, mae=0.9)], "test", 1.0, None)
    write_reference(tmp_path / "ref.json", ref)
    assert load_reference(tmp_path / "ref.json")["entries"] == ref["entries"]
    with pytest.raises(MerbenchError, match="is a folder"):
        write_reference(tmp_path, ref)
    (eid,) = ref["entries"]
    spec = ref["entries"][eid]["metrics"]["mae"]
    for key, value, expected in (("tolerance", -0.1, "tolerance: -0.1 is not >= 0"),
                                 ("reference", True, "reference: expected a number, got True"),
                                 ("reference", "x", "reference: expected a number"),
                                 ("lower_is_better", None, "lower_is_better: expected true or false")):
        bad = {**spec, key: value}
        ref["entries"][eid]["metrics"]["mae"] = bad
        (tmp_path / "bad.json").write_text(json.dumps(ref))
        with pytest.raises(MerbenchError, match=f"entries.{eid}.metrics.mae.{expected}"):
            load_reference(tmp_path / "bad.json")
    ref["entries"][eid]["metrics"]["mae"] = {k: v for k, v in spec.items() if k != "tolerance"}
    (tmp_path / "bad.json").write_text(json.dumps(ref))
    with pytest.raises(MerbenchError, match="mae.tolerance: missing"):
        load_reference(tmp_path / "bad.json")
