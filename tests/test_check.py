"""The regression check's arithmetic (merbench.check) on groups of results built in memory:
which way a metric may move, the tolerance edge, NaN, missing and new entries."""

from __future__ import annotations

import json
import math

import pytest

from merbench.aggregate import Group
from merbench.check import DEFAULT_TOLERANCE, build_reference, compare, entry_id, load_reference, write_reference
from merbench.errors import MerbenchError

from helpers import result_record


def _group(task: str, model: str = "mlp", split: str = "test", **means) -> Group:
    """Two seeds whose ``metric`` values average to ``means[metric]`` (0.2 apart)."""
    recipe = {"dataset": {"name": f"synthetic_{task}", "modalities": ["audio", "text"]},
              "model": {"name": model}, "train": {"lr": 0.001}}
    results = [result_record(run_id=f"r{seed}", dataset={"task": task},
                             metrics={split: {k: v + d for k, v in means.items()}})
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


def test_every_problem_of_a_reference_in_one_message(tmp_path):
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"schema_version": 1, "split": "tset", "entries": {
        "e1": [1],
        "e2": {"label": 3, "metrics": {}},
        "e3": {"label": "x", "metrics": {
            "acc": 60.0,
            "wf1": {"reference": "a", "lower_is_better": "no"},
            "mae": {"reference": 1.0, "tolerance": -1, "lower_is_better": True}}}}}))
    with pytest.raises(MerbenchError) as err:
        load_reference(path)
    assert str(err.value) == (
        f"{path}: split: expected one of train, valid, test, got 'tset'; "
        "entries.e1: expected a mapping with label and metrics, got [1]; "
        "entries.e2.label: expected a string, got 3; "
        "entries.e2.metrics: expected a non-empty mapping of metric -> reference, got {}; "
        "entries.e3.metrics.acc: expected a mapping with reference and tolerance, got 60.0; "
        "entries.e3.metrics.wf1.reference: expected a number, got 'a'; "
        "entries.e3.metrics.wf1.tolerance: missing; "
        "entries.e3.metrics.wf1.lower_is_better: expected true or false, got 'no'; "
        "entries.e3.metrics.mae.tolerance: -1 is not >= 0")


@pytest.mark.parametrize("data", [[1], {"schema_version": 2, "entries": {}}, {"schema_version": 1}, "x"])
def test_not_a_reference_file(tmp_path, data):
    (tmp_path / "ref.json").write_text(json.dumps(data))
    with pytest.raises(MerbenchError) as err:
        load_reference(tmp_path / "ref.json")
    assert str(err.value) == (f"{tmp_path / 'ref.json'}: not a merbench reference file (expected "
                              "schema_version 1 and an 'entries' mapping)")


def test_entries_that_are_not_a_mapping_and_a_missing_file(tmp_path):
    (tmp_path / "ref.json").write_text(json.dumps({"schema_version": 1, "entries": [1, 2]}))
    with pytest.raises(MerbenchError) as err:
        load_reference(tmp_path / "ref.json")
    assert str(err.value).endswith(": entries: expected a non-empty mapping of entry id -> entry, got [1, 2]")
    with pytest.raises(MerbenchError) as err:
        load_reference(tmp_path / "missing.json")
    assert str(err.value).endswith("missing.json: no such reference file (create it with --update)")


def test_a_reference_without_a_split_compares_the_test_split(tmp_path):
    ref = build_reference([_group("classification", acc=60.0, wf1=55.0)], "test", 1.0, None)
    del ref["split"]
    write_reference(tmp_path / "ref.json", ref)
    ref = load_reference(tmp_path / "ref.json")
    assert _statuses(compare([_group("classification", acc=60.0, wf1=50.0)], ref)) == {"acc": "ok", "wf1": "regression"}


def test_reference_file_contents():
    ref = build_reference([_group("classification", acc=60.123456, wf1=55.0)], "test", 1.0, None)
    assert set(ref) == {"schema_version", "created_utc", "split", "entries"} and ref["schema_version"] == 1
    (entry,) = ref["entries"].values()
    assert set(entry) == {"label", "recipe", "metrics", "runs"}
    assert entry["recipe"] == _group("classification").recipe
    assert entry["metrics"]["acc"]["reference"] == 60.1235  # rounded to 4 decimals
    group = _group("classification", acc=60.0)
    with pytest.raises(MerbenchError) as err:
        build_reference([group], "tset", 1.0, None)
    assert str(err.value) == "--split tset: expected one of train, valid, test"
    with pytest.raises(MerbenchError, match=r"^no results to build a reference from$"):
        build_reference([], "test", 1.0, None)


def test_findings_name_their_entry_reference_and_tolerance():
    from merbench.check import Finding

    ref = build_reference([_group("classification", acc=60.0, wf1=55.0)], "test", 1.0, None)
    findings = compare([_group("classification", acc=58.5)], ref)
    label = "synthetic_classification/mlp [S+T]"
    assert findings == [Finding(label, "acc", 60.0, 1.0, pytest.approx(58.5), "regression"),
                        Finding(label, "wf1", 55.0, 1.0, None, "missing")]


def test_entry_id_is_the_recipe_with_default_train_keys_left_out():
    from merbench.check import entry_id
    from merbench.recipe import TRAIN_DEFAULTS

    def eid(recipe):
        return entry_id(Group("k", recipe))

    base = {"dataset": {"name": "synthetic"}, "model": {"name": "mlp"}, "train": {"lr": 1e-3, "patience": 5}}
    reordered = {"train": {"patience": 5, "lr": 1e-3}, "model": {"name": "mlp"}, "dataset": {"name": "synthetic"}}
    assert eid(base) == eid(reordered) and len(eid(base)) == 12
    default = next(k for k, v in TRAIN_DEFAULTS.items() if k not in base["train"] and isinstance(v, (int, float, str)))
    with_default = {**base, "train": {**base["train"], default: TRAIN_DEFAULTS[default]}}
    assert eid(with_default) == eid(base)
    other = TRAIN_DEFAULTS[default] + 1 if not isinstance(TRAIN_DEFAULTS[default], str) else TRAIN_DEFAULTS[default] + "x"
    assert eid({**base, "train": {**base["train"], default: other}}) != eid(base)
    assert eid({**base, "train": {**base["train"], "lr": 2e-3}}) != eid(base)
    assert eid({**base, "model": {"name": "tfn"}}) != eid(base)


def test_new_entries_of_the_same_label_say_what_tells_them_apart():
    from merbench.check import entry_id

    ref = build_reference([_group("classification", acc=60.0, wf1=55.0)], "test", 1.0, None)
    a, b = _group("classification", acc=60.0, wf1=55.0), _group("classification", acc=60.0, wf1=55.0)
    a.recipe["train"]["lr"], b.recipe["train"]["lr"] = 0.01, 0.02
    news = sorted(f.entry for f in compare([a, b], ref) if f.status == "new")
    label = "synthetic_classification/mlp [S+T]"
    assert news == sorted([f"{label} (lr=0.01) entry {entry_id(a)}", f"{label} (lr=0.02) entry {entry_id(b)}"])


def test_a_reference_that_cannot_be_written(tmp_path):
    ref = build_reference([_group("classification", acc=60.0, wf1=55.0)], "test", 1.0, None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(MerbenchError) as err:
        write_reference(tmp_path / "file" / "ref.json", ref)
    assert str(err.value) == (f"{tmp_path / 'file' / 'ref.json'}: cannot write the reference ({tmp_path / 'file'} is "
                              f"a file, not a folder; expected a path whose folders are folders); expected a path in a "
                              f"writable folder; nothing was changed")


@pytest.mark.parametrize("error, reason", [(PermissionError(13, "Permission denied"), "Permission denied"),
                                           (OSError("disk on fire"), "disk on fire")])
def test_a_reference_write_that_fails_says_why(tmp_path, monkeypatch, error, reason):
    """The OS's reason (its strerror, else the error itself), never a traceback."""
    import merbench.check as check_module

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(check_module, "write_json", failing)
    ref = build_reference([_group("classification", acc=60.0, wf1=55.0)], "test", 1.0, None)
    with pytest.raises(MerbenchError) as err:
        write_reference(tmp_path / "ref.json", ref)
    assert str(err.value) == (f"{tmp_path / 'ref.json'}: cannot write the reference ({reason}); expected a path in "
                              f"a writable folder; nothing was changed")
