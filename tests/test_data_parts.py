"""Which runs share their data (merbench.aggregate.by_data and its parts): runs on other data
(fingerprint, features, protocol, label set, corpus seed) are separate parts titled with what
differs; runs of other modalities on the same utterances stay one part; parts come in
first-seen order. Hand-built results, exact outputs."""

from __future__ import annotations

from pathlib import Path

from merbench.aggregate import (_common, _differences_of, _flat, by_data, by_fingerprint, data_traits,
                                group_results)
from merbench.results import SCHEMA_VERSION, Result

COUNTS = {"train": 10, "valid": 5, "test": 4}
A, B, C = "a" * 64, "b" * 64, "c" * 64


def _result(fingerprint: str | None = A, seed: int = 0, model: str = "mlp", modalities=("audio", "text"),
            dataset: str = "synthetic", task: str = "classification", status: str = "ok", counts=COUNTS,
            protocol=None, labels=None, **data) -> Result:
    """One result.json; ``data`` are recipe dataset arguments (``seed`` is the training seed)."""
    recipe = {"dataset": {"name": dataset, "modalities": list(modalities), **data}, "model": {"name": model},
              "train": {"seed": seed, "lr": 0.001}}
    info = {"name": dataset, "task": task}
    if fingerprint is not None:
        info["fingerprint"] = fingerprint
    if counts is not None:
        info["counts"] = counts
    if protocol is not None:
        info["protocol"] = protocol
    if labels is not None:
        info["label_names"] = labels
    info.update(modalities=list(modalities), dims={})
    run_id = f"{model}-{seed}-{fingerprint}"
    data = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "status": status,
            "created_utc": "2026-01-01T00:00:00+00:00", "command": ["merbench"], "provenance": {},
            "recipe": recipe, "recipe_hash": "h", "seed": seed, "dataset": info, "model": {"name": model},
            "selection": {"split": "valid", "metric": "wf1", "best_epoch": 1, "best_value": 0.0, "epochs_run": 1},
            "metrics": {"test": {"wf1": 50.0 + seed}} if status == "ok" else {}}
    return Result.from_json(data, Path("runs") / run_id / "result.json")


def _parts(*results: dict) -> list[tuple[list[str], list[str]]]:
    """Each part as (its groups as "model modality-initials fingerprint-initial", its differs)."""
    def name(g):
        return f"{g.model} {'+'.join(m[0] for m in g.modalities)} {g.dataset.fingerprint[:1] or '-'}"

    return [([name(g) for g in part.groups], part.differs) for part in by_data(group_results(list(results)))]


# --- by_fingerprint ----------------------------------------------------------------------------

def test_by_fingerprint_splits_only_groups_whose_runs_read_other_data():
    alone, mixed, after = group_results([
        _result(A, seed=0, model="tfn"), _result(A, seed=1, model="tfn"),
        _result(A, seed=0), _result(B, seed=1), _result(A, seed=2), _result(B, seed=3, status="failed"),
        _result(C, seed=4), _result(None, seed=5, model="lmf"), _result(None, seed=6, model="lmf")])
    assert mixed.failed == 1
    found = by_fingerprint([alone, mixed, after])
    # a group on one set of data (or none named) is kept as it is, in its place
    assert found[0] is alone and found[-1] is after
    parts = found[1:-1]
    assert [[r["seed"] for r in p.results] for p in parts] == [[0, 2], [1], [4]]  # first-seen order
    assert [p.failed for p in parts] == [1, 0, 0]  # the failed runs are counted once
    assert all(p.key == mixed.key and p.recipe == mixed.recipe for p in parts)
    assert by_fingerprint([]) == []


def test_by_fingerprint_keeps_every_group_before_and_after_a_split():
    one, two = group_results([_result(A), _result(B, seed=1), _result(A, model="tfn")])
    found = by_fingerprint([one, two])
    assert [(g.model, [r["seed"] for r in g.results]) for g in found] == [("mlp", [0]), ("mlp", [1]), ("tfn", [0])]


# --- data_traits, _flat, _common ---------------------------------------------------------------

def test_data_traits_name_the_data_in_a_fixed_order_without_modalities_name_or_root():
    (g,) = group_results([_result(protocol="loso", labels=["neu", "hap"], root="/data", protocol_arg=1,
                                  features={"text": "bert", "audio": {"name": "w2v", "layer": 6}}, size=90)])
    g.recipe["dataset"]["protocol"] = "ignored: the result's protocol counts"
    assert list(data_traits(g).items()) == [
        ("dataset", "synthetic"), ("task", "classification"), ("protocol", "loso"), ("labels", ("neu", "hap")),
        ("dataset.features.text", "bert"), ("dataset.features.audio.name", "w2v"),
        ("dataset.features.audio.layer", 6), ("dataset.protocol_arg", 1), ("dataset.size", 90),
        ("utterances", "train 10/valid 5/test 4")]


def test_data_traits_of_a_result_without_protocol_labels_or_counts():
    (g,) = group_results([_result(counts=None)])
    assert data_traits(g) == {"dataset": "synthetic", "task": "classification", "protocol": None,
                              "labels": (), "utterances": ""}
    (g,) = group_results([_result(counts={"test": 3, "train": 7})])  # split order, absent ones skipped
    assert data_traits(g)["utterances"] == "train 7/test 3"


def test_flat_keeps_leaves_and_empty_dicts():
    assert _flat({"a": {"b": 1, "c": {}}, "d": [1, 2], "e": None}, "x") == {
        "x.a.b": 1, "x.a.c": {}, "x.d": [1, 2], "x.e": None}
    assert _flat(0, "x") == {"x": 0} and _flat({}, "x") == {"x": {}} and _flat("ab", "x") == {"x": "ab"}


def test_common_keeps_the_traits_every_one_shares():
    assert _common(iter([{"a": 1, "b": None, "c": 2}, {"a": 1, "c": 2}, {"a": 1, "c": 3}])) == {"a": 1}
    assert _common([{"a": 1, "b": 2}]) == {"a": 1, "b": 2}
    assert _common([{"a": 1, "b": None}, {"a": 2, "b": None}]) == {"b": None}


# --- _differences_of ---------------------------------------------------------------------------

def test_differences_name_what_sets_a_part_apart():
    mine = {"dataset": "x", "task": "t", "protocol": "loso", "labels": ("neu", "hap"), "dataset.seed": 3,
            "utterances": "test 4"}
    other = {"dataset": "y", "task": "u", "protocol": "loso", "labels": ("neu", "sad"), "dataset.seed": 0,
             "utterances": "test 5"}
    # the dataset and task are the table's title, never a difference; other counts follow from
    # another corpus and are left out when something else differs
    assert _differences_of(mine, [other], ["f"]) == ["labels neu, hap", "dataset.seed=3"]
    assert _differences_of(mine, [], ["f"]) == []
    assert _differences_of(mine, [dict(mine)], ["f1", "f2"]) == ["data fingerprint f1, f2"]
    # it differs from any one rival, not only from all of them
    assert _differences_of(mine, [dict(mine), {**mine, "protocol": "5-fold"}], ["f"]) == ["protocol loso"]


def test_counts_are_a_difference_when_nothing_else_differs():
    mine = {"dataset": "x", "utterances": "test 4", "dataset.seed": 3}
    assert _differences_of(mine, [{**mine, "utterances": "test 5"}], ["f"]) == ["utterances test 4"]
    assert _differences_of(mine, [{"utterances": "test 5", "dataset.seed": 0}], ["f"]) == ["dataset.seed=3"]


def test_a_key_the_rival_lacks_is_a_difference_even_when_none():
    mine = {"dataset": "x", "dataset.cut": None}
    assert _differences_of(mine, [{"dataset": "x"}], ["f"]) == ["dataset.cut=None"]
    # a part that lacks a rival's key differs by nothing of its own: its fingerprint says it
    assert _differences_of({"dataset": "x"}, [mine], ["f"]) == ["data fingerprint f"]


def test_at_most_five_differences_then_how_many_more():
    def diff(n):
        mine = {f"dataset.k{i}": 1 for i in range(n)}
        return _differences_of(mine, [{f"dataset.k{i}": 2 for i in range(n)}], ["f"])

    assert diff(5) == [f"dataset.k{i}=1" for i in range(5)]
    assert diff(6) == [f"dataset.k{i}=1" for i in range(5)] + ["1 more"]
    assert diff(8) == [f"dataset.k{i}=1" for i in range(5)] + ["3 more"]


# --- by_data -----------------------------------------------------------------------------------

def test_other_modalities_of_the_same_utterances_are_one_part():
    assert _parts(_result(A), _result(B, modalities=("text",)), _result(C, modalities=("audio",))) == [
        (["mlp a+t a", "mlp t b", "mlp a c"], [])]


def test_other_corpora_are_parts_titled_with_their_seed_in_first_seen_order():
    results = [_result(A, seed=3, counts={"test": 5}), _result(B, modalities=("text",), seed=3, counts={"test": 5}),
               _result(C, counts={"test": 4}, model="tfn")]
    for r, corpus in zip(results, (3, 3, 0)):
        r["recipe"]["dataset"]["seed"] = corpus
    assert _parts(*results) == [(["mlp a+t a", "mlp t b"], ["dataset.seed=3"]), (["tfn a+t c"], ["dataset.seed=0"])]


def test_protocol_labels_and_features_make_parts():
    assert _parts(_result(A, protocol="loso"), _result(B, protocol="5-fold")) == [
        (["mlp a+t a"], ["protocol loso"]), (["mlp a+t b"], ["protocol 5-fold"])]
    assert _parts(_result(A, labels=["neu", "hap"]), _result(B, labels=["neu", "sad"])) == [
        (["mlp a+t a"], ["labels neu, hap"]), (["mlp a+t b"], ["labels neu, sad"])]
    assert _parts(_result(A, features={"text": "bert"}), _result(B, features={"text": "glove"})) == [
        (["mlp a+t a"], ["dataset.features.text=bert"]), (["mlp a+t b"], ["dataset.features.text=glove"])]


def test_the_same_fingerprint_is_the_same_data_whatever_the_recipe_says():
    assert _parts(_result(A, workers=2), _result(A, model="tfn", workers=4)) == [(["mlp a+t a", "tfn a+t a"], [])]


def test_results_without_fingerprints_are_told_apart_by_their_traits():
    results = [_result(None, size=10), _result(None, model="tfn", size=20), _result(None, model="lmf", size=10)]
    assert _parts(*results) == [
        (["mlp a+t -", "lmf a+t -"], ["dataset.size=10"]), (["tfn a+t -"], ["dataset.size=20"])]


def test_fingerprints_and_traits_join_parts_transitively():
    # tfn shares mlp's fingerprint and lmf's traits: the three are one part
    assert _parts(_result(A, size=1), _result(B, model="lmf", modalities=("text",), size=2),
                  _result(A, model="tfn", size=2), _result(C, model="x", size=3)) == [
        (["mlp a+t a", "lmf t b", "tfn a+t a"], ["data fingerprint aaaaaaaaaaaa, bbbbbbbbbbbb"]),
        (["x a+t c"], ["dataset.size=3"])]
    # a longer chain, joined in another order
    assert [len(p[0]) for p in _parts(
        _result(A, size=1), _result(B, model="b", modalities=("text",), size=2),
        _result(C, model="c", modalities=("audio",), size=3), _result(C, model="d", modalities=("audio",), size=2),
        _result(A, model="e", size=3), _result("d" * 64, model="f", size=4))] == [5, 1]


def test_runs_of_the_same_modalities_on_other_data_are_split_by_fingerprint():
    # same traits (another root, changed files): the fingerprints tell the data apart
    assert _parts(_result(A), _result(B, model="tfn"), _result(B, model="lmf", modalities=("text",))) == [
        (["mlp a+t a"], ["data fingerprint aaaaaaaaaaaa"]),
        (["tfn a+t b", "lmf t b"], ["data fingerprint bbbbbbbbbbbb"])]
    # one recipe on two sets of data: two parts as well
    assert _parts(_result(A), _result(B, seed=1)) == [
        (["mlp a+t a"], ["data fingerprint aaaaaaaaaaaa"]), (["mlp a+t b"], ["data fingerprint bbbbbbbbbbbb"])]


def test_a_split_part_keeps_the_differences_of_its_own_traits():
    results = [_result(A, size=1), _result(B, model="tfn", size=1), _result(C, model="lmf", size=2)]
    assert _parts(*results) == [(["mlp a+t a"], ["dataset.size=1", "data fingerprint aaaaaaaaaaaa"]),
                                (["tfn a+t b"], ["dataset.size=1", "data fingerprint bbbbbbbbbbbb"]),
                                (["lmf a+t c"], ["dataset.size=2"])]


def test_parts_of_other_datasets_or_tasks_are_not_rivals():
    assert _parts(_result(A), _result(B, dataset="iemocap"), _result(C, model="tfn", task="regression")) == [
        (["mlp a+t a"], []), (["mlp a+t b"], []), (["tfn a+t c"], [])]
    assert _parts(_result(A, size=1), _result(B, size=2), _result(C, task="regression", size=3)) == [
        (["mlp a+t a"], ["dataset.size=1"]), (["mlp a+t b"], ["dataset.size=2"]), (["mlp a+t c"], [])]
    assert by_data([]) == []


def test_a_missing_and_an_empty_fingerprint_both_mean_unknown():
    (g,) = group_results([_result(A), _result(None, seed=1), _result("", seed=2)])
    assert [[r["seed"] for r in p.results] for p in by_fingerprint([g])] == [[0], [1, 2]]
