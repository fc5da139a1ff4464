import numpy as np
import pytest

from merbench.metrics import LOWER_IS_BETTER, Metric, classification_metrics, metric_names, regression_metrics


def test_classification_metrics_match_hand_counts():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["acc"] == pytest.approx(100 * 4 / 6)
    # class a: precision 1/2, recall 1/2 -> F1 0.5; b: P 2/3 R 1 -> 0.8; c: P 1 R 1/2 -> 2/3
    assert m["f1_a"] == pytest.approx(50.0) and m["f1_b"] == pytest.approx(80.0)
    assert m["f1_c"] == pytest.approx(200 / 3)
    assert m["wf1"] == pytest.approx((50 + 80 + 200 / 3) / 3)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_regression_metrics_follow_mmsa_definitions():
    truth = np.array([-2.0, 0.0, 1.2, 2.6, -0.4])
    preds = np.array([-1.6, 0.3, -0.2, 3.4, -0.6])
    m = regression_metrics(truth, preds)
    # has0: truth >= 0 -> [F, T, T, T, F]; preds >= 0 -> [F, T, F, T, F]: 4/5
    assert m["acc2_has0"] == pytest.approx(80.0)
    # non0 drops the zero item: truth > 0 [F, T, T, F]; preds > 0 [F, F, T, F]: 3/4
    assert m["acc2_non0"] == pytest.approx(75.0)
    # acc7: round(clip) truth [-2, 0, 1, 3, -0] preds [-2, 0, -0, 3, -1]: 3/5
    assert m["acc7"] == pytest.approx(60.0)
    assert m["mae"] == pytest.approx(np.mean(np.abs(preds - truth)))
    assert m["corr"] == pytest.approx(np.corrcoef(preds, truth)[0, 1])


def test_the_catalogue_names_every_metric_the_scorers_write():
    """One catalogue (issue 21): a metric added to a scorer without an entry would print with
    the wrong digits, title or direction, so the names must match."""
    y = np.array([0, 1, 2, 1])
    assert metric_names("classification", ["a", "b", "c"]) == [
        k for k in classification_metrics(y, y, ["a", "b", "c"]) if k != "confusion"]
    assert sorted(metric_names("regression")) == sorted(regression_metrics(np.array([-1.0, 0.5, 2.0]),
                                                                           np.array([0.0, 1.0, 2.0])))
    assert LOWER_IS_BETTER == {"mae", "loss"}
    assert (Metric.of("mae").digits, Metric.of("corr").digits, Metric.of("wf1").digits) == (3, 3, 1)
    assert Metric.of("f1_happy").title == "Happy F1" and Metric.of("f1_has0").title == "F1 (has0)"
    assert Metric.of("acc7").title == "ACC-7" and not Metric.of("acc7").lower_is_better

