"""Scores from predictions; accuracies and F1 in percent as the papers print.

Accuracy and F1 are computed from the confusion matrix with NumPy, as scikit-learn's
``accuracy_score`` and ``f1_score(zero_division=0)`` define them (F1 = 2 TP / (2 TP + FP + FN),
0 where a class is neither true nor predicted; weighted = support-weighted mean): scoring runs
after every epoch, and importing scikit-learn (with SciPy) costs a small run about 1.5 s of
start-up. tests/test_metrics_reference.py holds every number against scikit-learn itself.

Regression metrics follow MMSA's definitions exactly (``MetricsTop.__eval_mosei_regression``):
ACC-2 "has0" counts non-negative vs negative over all items, ACC-2 "non0" drops items whose
true value is 0 and counts positive vs negative; ACC-5 / ACC-7 clip to [-2, 2] / [-3, 3] and
round; F1 is weighted; MAE; Pearson correlation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metric:
    """One metric as every table, selection rule and check reads it."""

    name: str  # the key in result.json's ``metrics[split]``
    title: str  # the column header of the papers' tables
    digits: int = 1  # decimals printed
    lower_is_better: bool = False

    @staticmethod
    def of(name: str) -> Metric:
        """The catalogue's entry; ``f1_<class>`` is that class's F1 ("Happy F1"). A name the
        catalogue lacks (a results file's own key) reads as a higher-is-better number, one decimal."""
        if name in CATALOGUE:
            return CATALOGUE[name]
        if name.startswith("f1_"):
            return Metric(name, f"{name[len('f1_'):].capitalize()} F1")
        return Metric(name, name)


# The catalogue. Per-class F1
# (``f1_<class>``) is classification's too: see :meth:`Metric.of`.
CLASSIFICATION = (Metric("acc", "ACC"), Metric("wf1", "WF1"), Metric("macro_f1", "Macro F1"))
REGRESSION = (
    Metric("acc2_has0", "ACC-2 (has0)"), Metric("acc2_non0", "ACC-2 (non0)"),
    Metric("f1_has0", "F1 (has0)"), Metric("f1_non0", "F1 (non0)"),
    Metric("acc5", "ACC-5"), Metric("acc7", "ACC-7"),
    Metric("mae", "MAE", digits=3, lower_is_better=True), Metric("corr", "Corr", digits=3),
)
# The validation task loss (no aux losses), a selection metric as MMSA's trainers use it.
LOSS = Metric("loss", "Loss", digits=4, lower_is_better=True)
CATALOGUE = {m.name: m for m in (*CLASSIFICATION, *REGRESSION, LOSS)}
# Metrics where lower is better; every other metric is higher-is-better.
LOWER_IS_BETTER = frozenset(m.name for m in CATALOGUE.values() if m.lower_is_better)
# A task's usual validation metric: ``selection_metric: auto``, and always in metrics.csv.
USUAL = {"classification": "wf1", "regression": "mae"}


def metric_names(task: str, label_names: list[str] = ()) -> list[str]:
    """Every metric a run of ``task`` writes per split (per-class F1 after the others)."""
    if task == "regression":
        return [m.name for m in REGRESSION]
    return [m.name for m in CLASSIFICATION] + [f"f1_{n}" for n in label_names]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """``(n, n)`` counts, rows = true class, columns = predicted; classes are 0..n-1 (callers
    drop unlabelled items first; booleans count as 0 and 1)."""
    return np.bincount(np.asarray(y_true) * n + np.asarray(y_pred), minlength=n * n).reshape(n, n)


def f1_per_class(counts: np.ndarray) -> np.ndarray:
    """F1 of each class from a confusion matrix ``(C, C)``, or from a stack ``(..., C, C)``:
    2 TP / (true + predicted). Where true + predicted is 0, TP is 0 too and so is the F1."""
    tp = np.diagonal(counts, axis1=-2, axis2=-1)
    return 2.0 * tp / np.maximum(counts.sum(-1) + counts.sum(-2), 1)


def weighted_f1(counts: np.ndarray) -> float:
    """F1 averaged with the classes' true counts as weights."""
    return float(np.average(f1_per_class(counts), weights=counts.sum(-1)))


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str]) -> dict:
    counts = confusion(y_true, y_pred, len(label_names))
    per_class = f1_per_class(counts)
    out = {"acc": 100 * accuracy(y_true, y_pred), "wf1": 100 * weighted_f1(counts),
           "macro_f1": 100 * float(per_class.mean())}
    out.update({f"f1_{name}": 100 * float(f) for name, f in zip(label_names, per_class)})
    out["confusion"] = counts.tolist()
    return out


def _multiclass_acc(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.sum(np.round(pred) == np.round(true)) / float(len(true)))


def _binary_scores(true: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(accuracy, weighted F1) in percent of two boolean arrays."""
    return 100 * accuracy(true, pred), 100 * weighted_f1(confusion(true, pred, 2))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    non0 = y_true != 0
    acc_has0, f1_has0 = _binary_scores(y_true >= 0, y_pred >= 0)
    acc_non0, f1_non0 = _binary_scores(y_true[non0] > 0, y_pred[non0] > 0) if non0.any() else (np.nan, np.nan)
    out = {
        "acc2_has0": acc_has0, "f1_has0": f1_has0, "acc2_non0": acc_non0, "f1_non0": f1_non0,
        "acc5": 100 * _multiclass_acc(np.clip(y_pred, -2, 2), np.clip(y_true, -2, 2)),
        "acc7": 100 * _multiclass_acc(np.clip(y_pred, -3, 3), np.clip(y_true, -3, 3)),
        "mae": float(np.mean(np.abs(y_pred - y_true))),
        "corr": float(np.corrcoef(y_pred, y_true)[0, 1]) if np.std(y_pred) > 0 and np.std(y_true) > 0 else 0.0,
    }
    return {k: float(v) for k, v in out.items()}


def better(name: str, new: float, old: float | None) -> bool:
    """``new`` beats ``old`` (None: nothing yet) on metric ``name``."""
    if old is None:
        return True
    return new < old if Metric.of(name).lower_is_better else new > old
