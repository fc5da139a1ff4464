"""Every metric merbench reports, against references that share no code with merbench.metrics.

Hand counts on small cases with unequal class supports (where weighted and macro F1, and F1
and accuracy, differ), then random cases against plain-numpy definitions and scipy's Pearson r.
Classification: ACC, WF1, macro F1, per-class F1, confusion. Regression (MMSA's definitions):
ACC-2 / F1 "has0" and "non0", ACC-5, ACC-7, MAE, Corr.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from merbench.metrics import LOWER_IS_BETTER, better, classification_metrics, regression_metrics


# --- references written from the definitions ------------------------------------------------

def _f1_per_class(y: np.ndarray, p: np.ndarray, classes) -> tuple[list[float], list[int]]:
    """F1 of each class from its counts (0 where precision and recall are both undefined)."""
    f1s, supports = [], []
    for c in classes:
        tp = int(np.sum((y == c) & (p == c)))
        predicted, support = int(np.sum(p == c)), int(np.sum(y == c))
        f1s.append(0.0 if predicted + support == 0 else 2 * tp / (predicted + support))
        supports.append(support)
    return f1s, supports


def _weighted_f1(y, p, classes) -> float:
    f1s, supports = _f1_per_class(np.asarray(y), np.asarray(p), classes)
    return 100 * sum(f * s for f, s in zip(f1s, supports)) / sum(supports)


def _mmsa_reference(truth: np.ndarray, preds: np.ndarray) -> dict:
    """MMSA's ``__eval_mosei_regression``, restated loop by loop."""
    n = len(truth)
    pos_t, pos_p = [t >= 0 for t in truth], [q >= 0 for q in preds]
    keep = [i for i in range(n) if truth[i] != 0]
    non0_t, non0_p = [truth[i] > 0 for i in keep], [preds[i] > 0 for i in keep]

    def acc(a, b):
        return 100 * sum(x == y for x, y in zip(a, b)) / len(a)

    def classes(lo, hi):
        clip = lambda v: min(max(v, lo), hi)  # noqa: E731
        return acc([np.round(clip(q)) for q in preds], [np.round(clip(t)) for t in truth])

    return {"acc2_has0": acc(pos_t, pos_p), "f1_has0": _weighted_f1(pos_t, pos_p, [False, True]),
            "acc2_non0": acc(non0_t, non0_p), "f1_non0": _weighted_f1(non0_t, non0_p, [False, True]),
            "acc5": classes(-2, 2), "acc7": classes(-3, 3),
            "mae": sum(abs(q - t) for q, t in zip(preds, truth)) / n,
            "corr": pearsonr(preds, truth)[0]}


# --- classification ---------------------------------------------------------------------------

def test_classification_hand_counts_with_unequal_supports():
    # supports 4, 2, 1, and a class "d" that never occurs and is never predicted
    y = np.array([0, 0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 2, 1, 0, 2])
    m = classification_metrics(y, p, ["a", "b", "c", "d"])
    assert m["acc"] == pytest.approx(100 * 4 / 7)
    # a: P 2/3 R 2/4 -> 4/7; b: P 1/2 R 1/2 -> 1/2; c: P 1/2 R 1/1 -> 2/3; d: no support -> 0
    assert (m["f1_a"], m["f1_b"], m["f1_c"], m["f1_d"]) == pytest.approx((400 / 7, 50.0, 200 / 3, 0.0))
    # weighted by support (4, 2, 1, 0) / 7: 83/147; macro over the 4 labels: 73/168
    assert m["wf1"] == pytest.approx(100 * 83 / 147)
    assert m["macro_f1"] == pytest.approx(100 * 73 / 168)
    assert m["confusion"] == [[2, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("seed", range(5))
def test_classification_matches_definitions_on_random_unequal_supports(seed):
    rng = np.random.default_rng(seed)
    n, k = 200, 5
    y = rng.choice(k, n, p=[0.45, 0.25, 0.15, 0.1, 0.05])
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
    names = list("abcde")
    m = classification_metrics(y, p, names)
    f1s, supports = _f1_per_class(y, p, range(k))
    assert m["acc"] == pytest.approx(100 * np.mean(y == p))
    assert m["wf1"] == pytest.approx(100 * np.dot(f1s, supports) / n)
    assert m["macro_f1"] == pytest.approx(100 * np.mean(f1s))
    assert abs(m["wf1"] - m["macro_f1"]) > 0.1  # the case tells weighted from macro apart
    for name, f in zip(names, f1s):
        assert m[f"f1_{name}"] == pytest.approx(100 * f)
    assert m["confusion"] == [[int(np.sum((y == i) & (p == j))) for j in range(k)] for i in range(k)]


# --- regression -------------------------------------------------------------------------------

TRUTH = np.array([-3.0, -1.4, 0.0, 0.0, 0.6, 2.4, 1.0, -0.2])
PREDS = np.array([-2.2, -0.6, 0.4, 0.3, 1.7, 2.8, -0.2, -0.1])


def test_regression_hand_counts():
    m = regression_metrics(TRUTH, PREDS)
    # has0: truth >= 0 [F F T T T T T F], preds >= 0 [F F T T T T F F]: 7/8
    assert m["acc2_has0"] == pytest.approx(87.5)
    # weighted F1: True (support 5) P 4/4 R 4/5 -> 8/9; False (support 3) P 3/4 R 3/3 -> 6/7
    assert m["f1_has0"] == pytest.approx(100 * (5 * 8 / 9 + 3 * 6 / 7) / 8)
    # non0 drops the two zeros: truth > 0 [F F T T T F], preds > 0 [F F T T F F]: 5/6
    assert m["acc2_non0"] == pytest.approx(100 * 5 / 6)
    # True (support 3) P 2/2 R 2/3 -> 4/5; False (support 3) P 3/4 R 3/3 -> 6/7
    assert m["f1_non0"] == pytest.approx(100 * (3 * 4 / 5 + 3 * 6 / 7) / 6)
    # acc5: clip to [-2, 2], round: truth [-2 -1 0 0 1 2 1 -0], preds [-2 -1 0 0 2 2 -0 -0]: 6/8
    assert m["acc5"] == pytest.approx(75.0)
    # acc7: clip to [-3, 3], round: truth [-3 -1 0 0 1 2 1 -0], preds [-2 -1 0 0 2 3 -0 -0]: 4/8
    assert m["acc7"] == pytest.approx(50.0)
    assert m["mae"] == pytest.approx(5.1 / 8)  # |diffs| 0.8 0.8 0.4 0.3 1.1 0.4 1.2 0.1
    assert m["corr"] == pytest.approx(pearsonr(PREDS, TRUTH)[0])


@pytest.mark.parametrize("seed", range(5))
def test_regression_matches_mmsa_definitions_on_random_values(seed):
    rng = np.random.default_rng(seed)
    truth = np.round(rng.uniform(-3.4, 3.4, 300) * 3) / 3  # MOSI-like thirds, some exactly 0
    truth[:20] = 0.0
    preds = truth + rng.normal(0, 1.0, 300)
    m = regression_metrics(truth, preds)
    expected = _mmsa_reference(truth, preds)
    assert set(m) == set(expected)
    for name, value in expected.items():
        assert m[name] == pytest.approx(value, abs=1e-9), name


def test_regression_edge_cases():
    # every truth 0: the non0 metrics have nothing to count
    m = regression_metrics(np.zeros(4), np.array([0.5, -0.5, 0.0, 1.0]))
    assert np.isnan(m["acc2_non0"]) and np.isnan(m["f1_non0"])
    assert m["acc2_has0"] == pytest.approx(75.0)
    # constant predictions: Pearson r is undefined, reported as 0
    assert m["corr"] == 0.0
    assert regression_metrics(np.array([1.0, 2.0, 3.0]), np.ones(3))["corr"] == 0.0
    assert regression_metrics(np.ones(3), np.array([1.0, 2.0, 3.0]))["corr"] == 0.0
    # a perfect prediction
    perfect = regression_metrics(TRUTH, TRUTH)
    assert perfect["mae"] == 0.0 and perfect["corr"] == pytest.approx(1.0)
    assert all(perfect[k] == pytest.approx(100.0) for k in ("acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc5", "acc7"))


def test_direction_of_every_reported_metric():
    """MAE and the loss fall as a model gets better; every other reported metric rises."""
    assert LOWER_IS_BETTER >= {"mae", "loss"}
    higher = ["acc", "wf1", "macro_f1", "f1_happy", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0",
              "acc5", "acc7", "corr"]
    assert not LOWER_IS_BETTER & set(higher)
    for metric in higher:
        assert better(metric, 50.1, 50.0) and not better(metric, 50.0, 50.0) and not better(metric, 49.9, 50.0)
    for metric in ("mae", "loss"):
        assert better(metric, 0.49, 0.5) and not better(metric, 0.5, 0.5) and not better(metric, 0.51, 0.5)
    assert better("wf1", 0.0, None) and better("mae", 99.0, None)  # the first epoch is always kept


def test_edges_of_the_definitions():
    """Values where a boundary decides: a prediction of exactly 0 (has0 counts it positive,
    non0 negative), truths outside the clip ranges, spreads below 1 for Corr."""
    m = regression_metrics(np.array([-1.0, -2.0, 2.0]), np.array([0.0, 0.0, 1.0]))
    assert m["acc2_has0"] == pytest.approx(100 / 3) and m["acc2_non0"] == pytest.approx(100.0)
    assert m["f1_non0"] == pytest.approx(100.0)
    # clipped on both sides, truth and prediction: -2.6 -> -2 (ACC-5), -3.6 -> -3 (ACC-7)
    m = regression_metrics(np.array([-2.6, 2.6, -3.6, 3.6]), np.array([-2.0, 2.0, -3.0, 3.0]))
    assert m["acc5"] == pytest.approx(100.0) and m["acc7"] == pytest.approx(50.0)
    m = regression_metrics(np.array([-2.0, 2.0, -3.0, 3.0]), np.array([-2.6, 2.6, -3.6, 3.6]))
    assert m["acc5"] == pytest.approx(100.0) and m["acc7"] == pytest.approx(50.0)
    small_t, small_p = TRUTH / 10, PREDS / 10  # standard deviations well under 1
    assert regression_metrics(small_t, small_p)["corr"] == pytest.approx(pearsonr(small_p, small_t)[0])


def test_float32_outputs_are_scored_in_float64():
    """Models output float32; the scores are those of the same numbers in float64."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(-3, 3, 500).astype(np.float32)
    preds = (truth + rng.normal(0, 1, 500)).astype(np.float32)
    assert regression_metrics(truth, preds) == regression_metrics(truth.astype(np.float64), preds.astype(np.float64))


def test_scores_are_plain_floats_and_no_warning_is_raised():
    """Plain Python floats (a results file is JSON and YAML); a class that never occurs, or is
    never predicted, scores 0 without scikit-learn's UndefinedMetricWarning on every epoch."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]), ["a", "b", "c"])
        r = regression_metrics(np.array([1.0, 2.0, -1.0]), np.array([1.0, 2.0, 3.0]))  # never negative
    assert m["f1_b"] == 0.0 and m["f1_c"] == 0.0
    assert all(type(v) is float for k, v in m.items() if k != "confusion")
    assert all(type(v) is float for v in r.values())


def test_metrics_outside_the_catalogue():
    """A class's F1 and a results file's own key still read as a metric with their own name."""
    from merbench.metrics import Metric

    assert Metric.of("f1_happy") == Metric("f1_happy", "Happy F1", 1, False)
    assert Metric.of("my_score") == Metric("my_score", "my_score", 1, False)
    assert Metric.of("mae") == Metric("mae", "MAE", 3, True)


# --- scikit-learn itself ----------------------------------------------------------------------
# merbench.metrics computes from the confusion matrix with NumPy (start-up: no scikit-learn in a
# training run); these hold it to scikit-learn's functions, the field's reference, to the last bit.

@pytest.mark.parametrize("seed", range(6))
def test_classification_equals_scikit_learn(seed):
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 7))
    y = rng.choice(n_classes, size=int(rng.integers(5, 200)), p=rng.dirichlet(np.ones(n_classes) * 0.5))
    p = rng.choice(n_classes, size=len(y))
    if seed % 2:  # a class that is never predicted and one that never occurs
        p[p == 0] = n_classes - 1
        y[y == 1] = 0
    names = [f"c{i}" for i in range(n_classes)]
    labels = list(range(n_classes))
    got = classification_metrics(y, p, names)
    assert got["acc"] == 100 * accuracy_score(y, p)
    assert got["wf1"] == 100 * f1_score(y, p, labels=labels, average="weighted", zero_division=0)
    assert got["macro_f1"] == 100 * f1_score(y, p, labels=labels, average="macro", zero_division=0)
    per_class = f1_score(y, p, labels=labels, average=None, zero_division=0)
    assert [got[f"f1_{n}"] for n in names] == [100 * float(f) for f in per_class]
    assert got["confusion"] == confusion_matrix(y, p, labels=labels).tolist()


@pytest.mark.parametrize("seed", range(6))
def test_regression_accuracies_and_f1_equal_scikit_learn(seed):
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(seed)
    truth = np.round(rng.normal(0, 1.5, size=int(rng.integers(5, 150))) * 3) / 3
    preds = rng.normal(0, 1.5, size=len(truth)) + (3 if seed == 5 else 0)  # seed 5: all predicted >= 0
    got = regression_metrics(truth, preds)
    non0 = truth != 0
    assert got["acc2_has0"] == 100 * accuracy_score(truth >= 0, preds >= 0)
    assert got["f1_has0"] == 100 * f1_score(truth >= 0, preds >= 0, average="weighted", zero_division=0)
    assert got["acc2_non0"] == 100 * accuracy_score(truth[non0] > 0, preds[non0] > 0)
    assert got["f1_non0"] == 100 * f1_score(truth[non0] > 0, preds[non0] > 0, average="weighted", zero_division=0)


def test_f1_per_class_of_a_stack_is_each_matrix_alone():
    """significance scores thousands of resampled confusion matrices at once through
    f1_per_class: a stack (R, C, C) gives each matrix's own per-class F1, and a class with no
    true and no predicted item scores 0."""
    from merbench.metrics import f1_per_class

    rng = np.random.default_rng(0)
    stack = rng.integers(0, 9, size=(5, 4, 4))
    stack[2, 1, :] = 0
    stack[2, :, 1] = 0  # class 1 absent from resample 2
    expected = [_f1_per_class(*_pairs(m), range(4))[0] for m in stack]
    np.testing.assert_allclose(f1_per_class(stack), expected)
    assert f1_per_class(stack)[2, 1] == 0.0


def _pairs(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) label arrays with these confusion counts."""
    true = [t for t in range(len(counts)) for p in range(len(counts)) for _ in range(counts[t, p])]
    pred = [p for t in range(len(counts)) for p in range(len(counts)) for _ in range(counts[t, p])]
    return np.array(true), np.array(pred)
