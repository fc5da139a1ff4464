"""Paired bootstrap interval and permutation p-value between runs scored on the same utterances."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from merbench.errors import MerbenchError
from merbench.metrics import classification_metrics
from merbench.recipe import validate
from merbench.significance import (RunPredictions, compare, confusions, load_predictions, load_side, metric_names,
                                   not_significantly_worse, pair_by_seed, scores_from_confusions, significance)
from merbench.train import train

from helpers import cli, one_line_error, tiny_recipe

LABELS = ["happy", "sad", "neutral", "angry", "excited", "frustrated"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two seeds of one recipe, a second model on the same data, and a run on other data."""
    tmp = tmp_path_factory.mktemp("signif")
    out = {}
    for name, model, seed, data_seed in (("a0", "mlp_tiny", 0, 0), ("a1", "mlp_tiny", 1, 0),
                                         ("b0", "late_mlp", 0, 0), ("other", "mlp_tiny", 0, 1),
                                         ("text", "mlp_tiny", 0, 0)):
        recipe = tiny_recipe(model, max_epochs=2, seed=seed)
        recipe["dataset"]["seed"] = data_seed
        if name == "text":
            recipe["dataset"]["modalities"] = ["text"]
        folder = tmp / ("a" if name in ("a0", "a1") else name)
        out[name] = train(validate(recipe, "test"), folder, progress=False)
    out["a"] = tmp / "a"
    return out


def _fake(seed: int, labels: np.ndarray, predicted: np.ndarray) -> RunPredictions:
    return RunPredictions(Path(f"run{seed}"), seed, "f" * 64, LABELS, np.arange(len(labels)), labels, predicted)


def test_scores_from_confusions_match_scikit_learn():
    rng = np.random.default_rng(0)
    labels, predicted = rng.integers(0, 6, 300), rng.integers(0, 5, 300)  # class 5 never predicted
    labels[labels == 1] = 2  # class 1 absent: zero_division handling
    draws = np.stack([np.arange(300), rng.integers(0, 300, 300)])  # the identity and one bootstrap draw
    conf = confusions(labels[draws], predicted[draws], 6)
    for row, draw in enumerate(draws):
        expected = classification_metrics(labels[draw], predicted[draw], LABELS)
        for metric in metric_names(LABELS):
            assert scores_from_confusions(conf, metric, LABELS)[row] == pytest.approx(expected[metric], abs=1e-9), metric


def test_a_run_against_itself_is_exactly_zero_with_p_one(runs):
    result = significance(runs["a0"], runs["a0"], "wf1", resamples=500)
    assert (result.difference, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    acc = significance(runs["a"], runs["a"], "acc", resamples=200)  # folder of seeds: seed-matched
    assert acc.pairs == [(0, 0), (1, 1)] and (acc.low, acc.high, acc.p_value) == (0.0, 0.0, 1.0)


def test_two_different_runs_give_a_sane_interval_and_p(runs):
    result = significance(runs["a0"], runs["b0"], "wf1", resamples=2000, seed=1)
    assert result.low < result.high
    assert result.low <= result.difference <= result.high
    assert 0 < result.p_value <= 1
    assert result.difference == pytest.approx(result.b - result.a)
    again = significance(runs["a0"], runs["b0"], "wf1", resamples=2000, seed=1)
    assert again == result  # the seed fixes every draw
    swapped = significance(runs["b0"], runs["a0"], "wf1", resamples=2000, seed=1)
    assert swapped.difference == pytest.approx(-result.difference)


def test_a_clearly_better_run_is_significant_and_a_tied_one_is_not():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 400)
    random_guess = rng.integers(0, 6, 400)
    mostly_right = np.where(rng.random(400) < 0.8, labels, random_guess)
    result = compare([_fake(0, labels, random_guess)], [_fake(0, labels, mostly_right)], ["wf1"], resamples=999)["wf1"]
    assert result.difference > 40 and result.low > 0
    assert result.p_value == pytest.approx(1 / 1000)  # no permutation reaches the observed gap
    other_guess = rng.integers(0, 6, 400)
    tied = compare([_fake(0, labels, random_guess)], [_fake(0, labels, other_guess)], ["acc"], resamples=999)["acc"]
    assert tied.low < 0 < tied.high and tied.p_value > 0.05


def test_seed_matched_pairs():
    labels = np.zeros(3, dtype=int)
    side = lambda *seeds: [_fake(s, labels, labels) for s in seeds]  # noqa: E731
    assert [(a.seed, b.seed) for a, b in pair_by_seed(side(0, 1, 2), side(2, 1, 5))] == [(1, 1), (2, 2)]
    assert [(a.seed, b.seed) for a, b in pair_by_seed(side(3, 4), side(7, 5))] == [(3, 5)]  # none shared: lowest


def test_not_significantly_worse(runs):
    assert not_significantly_worse([runs["a0"]], [runs["a0"]], resamples=200)
    assert isinstance(not_significantly_worse([runs["a0"], runs["a1"]], [runs["b0"]], "acc", resamples=200), bool)


def test_cli_prints_interval_and_p(runs):
    out = cli("significance", runs["a0"], runs["b0"], "--resamples", "500")
    assert out.exit_code == 0, out.output
    assert "95% interval (paired bootstrap)" in out.output and "p (two-sided paired permutation)" in out.output
    data = json.loads(cli("significance", runs["a0"], runs["a0"], "--resamples", "100", "--metric", "acc",
                          "--confidence", "0.9", "--json").output)
    assert data["metric"] == "acc" and data["confidence"] == 0.9 and data["p_value"] == 1.0


def test_other_modalities_of_the_same_utterances_are_compared(runs):
    # T against S+T+V of one corpus: the fingerprints differ (features), the utterances do not.
    text, full = load_predictions(runs["text"]), load_predictions(runs["a0"])
    assert text.fingerprint != full.fingerprint
    result = significance(runs["text"], runs["a0"], "acc", resamples=200)
    assert result.utterances == len(full.labels) and result.pairs == [(0, 0)]
    # The same check still refuses a run on other data (synthetic corpus seed 1).
    with pytest.raises(MerbenchError, match="dataset fingerprints differ"):
        significance(runs["text"], runs["other"], "acc", resamples=200)


def test_runs_on_different_utterances_are_a_one_line_error(runs, tmp_path):
    error = one_line_error(cli("significance", runs["a0"], runs["other"]))
    assert "were not scored on the same utterances: dataset fingerprints differ" in error
    # Same data, but predictions for fewer utterances (a damaged or hand-edited file).
    cut = tmp_path / "cut"
    shutil.copytree(runs["b0"], cut)
    with np.load(cut / "predictions.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update({k: v[:-3] for k, v in arrays.items() if k.startswith("test_")})
    np.savez(cut / "predictions.npz", **arrays)
    assert "predictions cover" in one_line_error(cli("significance", runs["a0"], cut))


@pytest.mark.parametrize("args, expected", [
    (["--metric", "wf2"], "--metric wf2: expected one of acc, wf1"),
    (["--resamples", "0"], "--resamples 0: expected a positive number"),
    (["--confidence", "95"], "--confidence 95.0: expected a number between 0 and 1"),
    (["--split", "train"], "no 'train' predictions"),
])
def test_cli_bad_options(runs, args, expected):
    assert expected in one_line_error(cli("significance", runs["a0"], runs["b0"], *args))


def test_cli_bad_runs(runs, tmp_path):
    assert "different recipes; give one run folder" in one_line_error(cli("significance", runs["a0"], runs["a"].parent))
    (tmp_path / "bare").mkdir()
    shutil.copy(runs["a0"] / "result.json", tmp_path / "bare" / "result.json")
    assert "predictions.npz: no such file" in one_line_error(cli("significance", runs["a0"], tmp_path / "bare"))


def test_table_marks_cells_not_significantly_different_from_the_best(runs):
    out = cli("table", runs["a"], runs["b0"], "--significance", "--resamples", "300", "--format", "markdown")
    assert out.exit_code == 0, out.output
    assert "† not significantly different from the best of its column" in out.output
    rows = [line for line in out.output.splitlines() if line.startswith("| mlp_tiny") or line.startswith("| late_mlp")]
    assert len(rows) == 2
    # Each column: the best cell is bold and never carries a dagger.
    for row in rows:
        assert not any("**" in cell and "†" in cell for cell in row.split("|"))
    # The WF1 column (last): the other row has a dagger exactly when the test says p >= 0.05.
    wf1 = {row.split("|")[1].strip(): row.split("|")[-2] for row in rows}
    best, other = ("mlp_tiny", "late_mlp") if "**" in wf1["mlp_tiny"] else ("late_mlp", "mlp_tiny")
    side = {"mlp_tiny": load_side(runs["a"]), "late_mlp": load_side(runs["b0"])}
    p = compare(side[best], side[other], ["wf1"], resamples=300)["wf1"].p_value
    assert ("†" in wf1[other]) == (p >= 0.05)
    # Runs on another corpus are another table (issue 24), never tested against this one's best.
    out = cli("table", runs["a0"], runs["other"], "--significance", "--resamples", "10", "--format", "json")
    assert out.exit_code == 0, out.output
    tables = json.loads(out.stdout)
    assert [t["title"].split(" (")[0] for t in tables] == ["synthetic, dataset.seed=0", "synthetic, dataset.seed=1"]
    assert not any("marks" in cell for t in tables for row in t["rows"] for cell in row["cells"].values())


def _with_test_outputs(run_dir: Path, dest: Path, change) -> Path:
    """A copy of a run folder whose saved test outputs are ``change(labels, outputs)``."""
    shutil.copytree(run_dir, dest)
    with np.load(dest / "predictions.npz") as data:
        arrays = dict(data)
    arrays["test_outputs"] = change(arrays["test_labels"], arrays["test_outputs"])
    np.savez_compressed(dest / "predictions.npz", **arrays)
    return dest


def test_a_clearly_worse_run_is_significantly_worse(runs, tmp_path):
    """Against a copy of a run that predicts every test utterance right, the run itself (under
    10 % right) and a copy predicting all wrong are significantly worse; a copy of it is not."""
    def one_hot(labels, outputs, shift):
        out = np.zeros_like(outputs)
        out[np.arange(len(labels)), (np.maximum(labels, 0) + shift) % outputs.shape[1]] = 1.0
        return out

    right = _with_test_outputs(runs["a0"], tmp_path / "right", lambda y, o: one_hot(y, o, 0))
    wrong = _with_test_outputs(runs["a0"], tmp_path / "wrong", lambda y, o: one_hot(y, o, 1))
    same = _with_test_outputs(runs["a0"], tmp_path / "same", lambda y, o: o)
    assert not not_significantly_worse([right], [runs["a0"]], resamples=200)
    assert not not_significantly_worse([right], [wrong], "acc", resamples=200)
    assert not_significantly_worse([runs["a0"]], [same], resamples=200)
    assert not_significantly_worse([right], [right], "acc", resamples=200)
    # result dicts read by merbench.aggregate name their runs too
    from merbench.aggregate import collect

    assert not not_significantly_worse(collect([right]), collect([runs["a0"]]), resamples=200)
    assert not_significantly_worse(collect([runs["a0"]]), collect([same]), resamples=200)


def test_scores_of_empty_and_one_item_confusions():
    """Edges of the division: no item at all scores 0 everywhere; one right item scores 100,
    the classes with neither items nor predictions 0 (scikit-learn's zero_division=0)."""
    import warnings

    names = ["a", "b", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 anywhere
        for metric in metric_names(names):
            assert scores_from_confusions(np.zeros((2, 3, 3), dtype=np.int64), metric, names).tolist() == [0.0, 0.0]
        one = confusions(np.array([[0]]), np.array([[0]]), 3)
        assert [scores_from_confusions(one, m, names)[0] for m in metric_names(names)] == pytest.approx(
            [100.0, 100.0, 100 / 3, 100.0, 0.0, 0.0])


def test_not_significantly_worse_reads_its_split_seed_resamples_and_alpha(runs, tmp_path):
    right = _with_test_outputs(runs["a0"], tmp_path / "right", lambda y, o: np.eye(o.shape[1])[np.maximum(y, 0)])
    # only the test outputs changed: on the validation split the two runs are the same
    assert not_significantly_worse([right], [runs["a0"]], split="valid", resamples=200)
    # p = alpha is "not significantly different"; p just under alpha is significant
    a, b = load_predictions(runs["a0"]), load_predictions(runs["b0"])
    p = compare([a], [b], ["wf1"], resamples=300, seed=3)["wf1"].p_value
    assert not_significantly_worse([runs["a0"]], [runs["b0"]], resamples=300, seed=3, alpha=p)
    assert not not_significantly_worse([runs["a0"]], [runs["b0"]], resamples=300, seed=3, alpha=p + 1e-12)
    # the defaults: 10,000 resamples, seed 0
    p_default = compare([a], [b], ["wf1"], resamples=10_000, seed=0)["wf1"].p_value
    assert not_significantly_worse([runs["a0"]], [runs["b0"]], alpha=p_default)
    assert not not_significantly_worse([runs["a0"]], [runs["b0"]], alpha=p_default + 1e-12)


def test_compare_defaults_and_bounds():
    labels = np.array([0, 1, 2, 3, 4, 5] * 5)
    a, b = _fake(0, labels, labels), _fake(0, labels, np.roll(labels, 1))
    rng = np.random.default_rng(4)
    noisy_a, noisy_b = _fake(0, labels, rng.integers(0, 6, 30)), _fake(0, labels, rng.integers(0, 6, 30))
    default = compare([noisy_a], [noisy_b], ["acc"])["acc"]
    assert default == compare([noisy_a], [noisy_b], ["acc"], resamples=10_000, seed=0)["acc"]
    assert default != compare([noisy_a], [noisy_b], ["acc"], resamples=10_000, seed=1)["acc"]  # the seed matters here
    assert compare([a], [b], ["acc"], resamples=1)["acc"].resamples == 1
    for confidence in (0.0, 1.0, 1.5):
        with pytest.raises(MerbenchError, match=f"--confidence {confidence}: expected a number between 0 and 1"):
            compare([a], [b], ["acc"], confidence=confidence)
    with pytest.raises(MerbenchError, match="--resamples 0: expected a positive number"):
        compare([a], [b], ["acc"], resamples=0)
    # more resamples than one vectorised chunk: a run against itself still has p = 1
    same = compare([a], [a], ["acc"], resamples=1200)["acc"]
    assert (same.p_value, same.resamples, same.utterances) == (1.0, 1200, 30)
    empty = _fake(0, labels[:0], labels[:0])
    empty_b = RunPredictions(Path("runB"), 0, "f" * 64, LABELS, labels[:0], labels[:0], labels[:0])
    with pytest.raises(MerbenchError) as err:
        compare([empty], [empty_b], ["acc"])
    assert str(err.value) == "run0: no labelled utterances to compare"


def test_bootstrap_interval_of_a_known_distribution():
    """Two utterances, B wrong on the first: a resample holds it 0, 1 or 2 times (1/4, 1/2,
    1/4), so B - A in ACC is 0, -50 or -100; the central 40 % interval is [-50, -50]."""
    a, b = _fake(0, np.array([0, 0]), np.array([0, 0])), _fake(0, np.array([0, 0]), np.array([1, 0]))
    result = compare([a], [b], ["acc"], resamples=5000, confidence=0.4, seed=1)["acc"]
    assert (result.difference, result.low, result.high) == (-50.0, -50.0, -50.0)
    wide = compare([a], [b], ["acc"], resamples=5000, confidence=0.6, seed=1)["acc"]  # [-100, 0]
    assert (wide.low, wide.high) == (-100.0, 0.0)


def test_permutation_p_value_of_a_known_null():
    """B right where A is wrong on 8 of 400 utterances, the same elsewhere: under the null
    each of the 8 swaps with probability 1/2, and only the 2 of 256 all-same swaps reach the
    observed gap, so p is near 2/256."""
    labels = np.zeros(400, dtype=int)
    a_pred = labels.copy()
    a_pred[:8] = 1
    result = compare([_fake(0, labels, a_pred)], [_fake(0, labels, labels)], ["acc"], resamples=4000, seed=2)["acc"]
    assert result.difference == pytest.approx(2.0)
    assert 0.003 < result.p_value < 0.015


def test_permutation_null_averages_the_seed_pairs():
    """Seed 0: B right on 8 utterances where A is wrong; seed 1: the two runs agree. The gap is
    (2 + 0) / 2 = 1 point; under the null it is half of seed 0's swapped gap, which reaches 1
    only when all 8 swap alike: p near 2/256 (not 1/(R+1), nor near 0.73 for an unaveraged null)."""
    labels = np.zeros(400, dtype=int)
    a_pred = labels.copy()
    a_pred[:8] = 1
    result = compare([_fake(0, labels, a_pred), _fake(1, labels, labels)],
                     [_fake(0, labels, labels), _fake(1, labels, labels)], ["acc"], resamples=4000, seed=2)["acc"]
    assert result.difference == pytest.approx(1.0)
    assert 0.003 < result.p_value < 0.015


def test_several_seed_pairs_are_averaged():
    """Two seed pairs with the same predictions give the one-pair numbers."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, 120)
    pa, pb = rng.integers(0, 6, 120), np.where(rng.random(120) < 0.5, labels, rng.integers(0, 6, 120))
    one = compare([_fake(0, labels, pa)], [_fake(0, labels, pb)], ["acc", "wf1"], resamples=300)
    two = compare([_fake(0, labels, pa), _fake(1, labels, pa)], [_fake(0, labels, pb), _fake(1, labels, pb)],
                  ["acc", "wf1"], resamples=300)
    for m in ("acc", "wf1"):
        assert (two[m].a, two[m].b, two[m].difference) == pytest.approx((one[m].a, one[m].b, one[m].difference))
        # one chunk: the same utterance draws, so the same bootstrap interval
        assert (two[m].low, two[m].high) == pytest.approx((one[m].low, one[m].high))
        assert two[m].pairs == [(0, 0), (1, 1)]
    # each pair's scores, averaged
    assert one["acc"].a == pytest.approx(100 * np.mean(pa == labels))
    assert one["acc"].b == pytest.approx(100 * np.mean(pb == labels))


def test_utterance_and_pairing_errors_name_both_runs():
    labels = np.array([0, 1, 2])
    base = _fake(0, labels, labels)
    other_fp = RunPredictions(Path("runB"), 0, "e" * 64, LABELS, np.arange(3), labels, labels)
    with pytest.raises(MerbenchError) as err:
        compare([base], [other_fp], ["acc"])
    assert str(err.value) == ("run0 and runB were not scored on the same utterances: dataset fingerprints differ "
                              "(ffffffffffff vs eeeeeeeeeeee)")
    # same corpus, other utterances with the same labels: still not the same utterances
    shifted = RunPredictions(Path("runC"), 0, "e" * 64, LABELS, np.arange(1, 4), labels, labels, "iemocap|std")
    same_corpus = RunPredictions(Path("runD"), 0, "d" * 64, LABELS, np.arange(3), labels, labels, "iemocap|std")
    with pytest.raises(MerbenchError, match="dataset fingerprints differ"):
        compare([same_corpus], [shifted], ["acc"])
    relabelled = RunPredictions(Path("runE"), 0, "f" * 64, ["x"] * 6, np.arange(3), labels, labels)
    with pytest.raises(MerbenchError) as err:
        compare([base], [relabelled], ["acc"])
    assert str(err.value).startswith("run0 and runE use different label sets")
    moved = RunPredictions(Path("runF"), 0, "f" * 64, LABELS, np.arange(1, 4), labels, labels)
    with pytest.raises(MerbenchError) as err:
        compare([base], [moved], ["acc"])
    assert str(err.value) == ("run0 and runF were not scored on the same utterances: the predictions cover 3 "
                              "and 3 utterances that do not match")
    for a_side, b_side in (([], [base]), ([base], [])):
        with pytest.raises(MerbenchError) as err:
            compare(a_side, b_side, ["acc"])
        assert str(err.value) == "significance needs at least one run on each side"
