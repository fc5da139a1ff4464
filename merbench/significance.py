"""Is run B better than run A on the same test utterances? Paired resampling over utterances.

Two numbers, from the saved test predictions (``predictions.npz``) of both runs:

- a **confidence interval** for the difference B - A (percent points of WF1, ACC, ...), by the
  paired bootstrap: draw N utterances with replacement, score both runs on that same draw,
  take the difference; the interval is the percentile interval of R such differences;
- a **two-sided p-value** by the paired permutation test (approximate randomisation): under
  the null hypothesis that A and B are interchangeable, swapping A's and B's prediction of
  an utterance with probability 1/2 leaves the distribution of the difference unchanged;
  p = (1 + #{|d_perm| >= |d_observed|}) / (R + 1). It is chosen over a bootstrap p-value
  because it tests that null directly, with no shifting of the bootstrap distribution,
  and stays valid for corpus-level metrics like weighted F1 that are not a mean over
  utterances (Riezler & Maxwell, 2005; Dror et al., 2018). The +1 keeps p > 0: with R
  draws no p below 1 / (R + 1) can be claimed.

Several seeds per side: runs are paired by seed (seed-matched pairs; when the two sides
share no seed, their lowest seeds are paired). Each resample draws one set of utterances
(bootstrap) or one set of swaps per pair (permutation) and the statistic is the mean over
pairs of B_s - A_s. The interval is then over test utterances for the seed-averaged
difference; the spread between seeds is what the tables' ± shows.

Resampled scores are computed from confusion matrices with numpy (every resample at once);
the observed scores come from ``merbench.metrics``, the same function that wrote result.json
(per-class F1 is that module's ``f1_per_class`` in both), and the tests check that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from merbench import run_folder
from merbench.aggregate import one_group
from merbench.errors import MerbenchError
from merbench.metrics import classification_metrics, f1_per_class, metric_names as catalogue_names
from merbench.registry import closest
from merbench.results import Result

CHUNK = 500  # resamples per vectorised step: bounds memory at CHUNK x N indices


@dataclass
class RunPredictions:
    """One run's predictions on one split, sorted by utterance index; unlabelled ones dropped."""

    run_dir: Path
    seed: int
    fingerprint: str
    label_names: list[str]
    index: np.ndarray  # (N,) flat utterance index within the split
    labels: np.ndarray  # (N,) true class ids
    predicted: np.ndarray  # (N,) predicted class ids
    corpus: str = ""  # "<dataset>|<protocol>": what the fingerprint names, features aside


@dataclass
class Comparison:
    """B - A on one metric: observed difference, bootstrap interval, permutation p-value."""

    metric: str
    a: float  # mean over pairs of A's score (percent)
    b: float
    difference: float  # b - a
    low: float
    high: float
    confidence: float
    p_value: float
    resamples: int
    utterances: int
    pairs: list[tuple[int, int]]  # (seed of A, seed of B)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def load_predictions(run_dir: Path, split: str = "test") -> RunPredictions:
    # start-up: yaml only when this runs
    from merbench.run import load_run

    run = load_run(run_dir)
    run.require_ok("it has no predictions")
    if run.dataset.task != "classification":
        raise MerbenchError(f"{run.path}: significance needs a classification run "
                            f"(dataset {run.dataset.name!r} is {run.dataset.task})")
    preds = run.predictions(split)
    order = np.argsort(preds.index, kind="stable")
    index, labels, predicted = preds.index[order], preds.labels[order], preds.outputs[order].argmax(-1)
    keep = labels >= 0
    return RunPredictions(run.path, run.seed, run.dataset.fingerprint, list(run.dataset.label_names),
                          index[keep], labels[keep], predicted[keep],
                          f"{run.dataset.name}|{run.dataset.protocol}")


def check_same_utterances(a: RunPredictions, b: RunPredictions) -> None:
    """One-line error unless both runs were scored on the same utterances.

    The same data (fingerprint) passes. Runs whose fingerprints differ because they read other
    modalities or features of the same corpus (T against S+T+V: the question "does fusion
    help?") pass when dataset, protocol, utterance indices and labels all agree; any other
    difference of fingerprint is an error."""
    where = f"{a.run_dir} and {b.run_dir}"
    same_utterances = (a.corpus == b.corpus and a.label_names == b.label_names
                       and np.array_equal(a.index, b.index) and np.array_equal(a.labels, b.labels))
    if a.fingerprint != b.fingerprint and not (a.corpus and same_utterances):
        raise MerbenchError(f"{where} were not scored on the same utterances: dataset fingerprints differ "
                            f"({a.fingerprint[:12]} vs {b.fingerprint[:12]})")
    if a.label_names != b.label_names:
        raise MerbenchError(f"{where} use different label sets ({a.label_names} vs {b.label_names})")
    if not np.array_equal(a.index, b.index) or not np.array_equal(a.labels, b.labels):
        raise MerbenchError(f"{where} were not scored on the same utterances: the predictions cover "
                            f"{len(a.index)} and {len(b.index)} utterances that do not match")


def pair_by_seed(a_runs: list[RunPredictions], b_runs: list[RunPredictions]
                 ) -> list[tuple[RunPredictions, RunPredictions]]:
    """Seed-matched pairs; with no seed in common, the lowest seed of each side."""
    if not a_runs or not b_runs:
        raise MerbenchError("significance needs at least one run on each side")
    a_by_seed = {r.seed: r for r in a_runs}
    b_by_seed = {r.seed: r for r in b_runs}
    common = sorted(set(a_by_seed) & set(b_by_seed))
    if common:
        return [(a_by_seed[s], b_by_seed[s]) for s in common]
    return [(a_by_seed[min(a_by_seed)], b_by_seed[min(b_by_seed)])]


# --- Metrics from confusion matrices, for many resamples at once ---------------------------

def metric_names(label_names: list[str]) -> list[str]:
    return catalogue_names("classification", label_names)


def check_metric(metric: str, label_names: list[str]) -> None:
    valid = metric_names(label_names)
    if metric not in valid:
        raise MerbenchError(f"--metric {metric}: expected one of {', '.join(valid)}{closest(metric, valid)}")


def confusions(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(R, C, C) confusion counts, rows = true class, from (R, N) true and predicted class ids."""
    return _confusions_of_codes(labels * classes + predicted, classes)


def _confusions_of_codes(codes: np.ndarray, classes: int) -> np.ndarray:
    """(R, N) cell codes ``true * C + predicted`` -> (R, C, C) counts, one bincount for all R."""
    r, cells = len(codes), classes * classes
    offsets = (np.arange(r) * cells)[:, None]
    return np.bincount((codes + offsets).ravel(), minlength=r * cells).reshape(r, classes, classes)


def scores_from_confusions(conf: np.ndarray, metric: str, label_names: list[str]) -> np.ndarray:
    """(R,) scores in percent, as ``merbench.metrics`` computes them; a resample of no item scores 0."""
    tp = np.diagonal(conf, axis1=1, axis2=2)  # (R, C)
    support = conf.sum(2)  # true counts
    total = np.maximum(support.sum(1), 1)
    if metric == "acc":
        return 100 * tp.sum(1) / total
    f1 = f1_per_class(conf)  # (R, C)
    if metric == "wf1":
        return 100 * (f1 * support).sum(1) / total
    if metric == "macro_f1":
        return 100 * f1.mean(1)
    return 100 * f1[:, label_names.index(metric[len("f1_"):])]


# --- The test ------------------------------------------------------------------------------

def compare(a_runs: list[RunPredictions], b_runs: list[RunPredictions], metrics: list[str], *,
            resamples: int = 10_000, confidence: float = 0.95, seed: int = 0) -> dict[str, Comparison]:
    """B - A for each metric, on seed-matched pairs (see the module docstring)."""
    if resamples < 1:
        raise MerbenchError(f"--resamples {resamples}: expected a positive number")
    if not 0 < confidence < 1:
        raise MerbenchError(f"--confidence {confidence}: expected a number between 0 and 1, e.g. 0.95")
    pairs = pair_by_seed(a_runs, b_runs)
    for a, b in pairs:  # every run against the first: all on the same utterances
        check_same_utterances(pairs[0][0], a)
        check_same_utterances(pairs[0][0], b)
    names = pairs[0][0].label_names
    for metric in metrics:
        check_metric(metric, names)
    classes, n = len(names), len(pairs[0][0].labels)
    if n == 0:
        raise MerbenchError(f"{pairs[0][0].run_dir}: no labelled utterances to compare")
    labels = pairs[0][0].labels

    observed = {m: np.zeros(2) for m in metrics}  # scikit-learn, as written in result.json
    for a, b in pairs:
        sa = classification_metrics(labels, a.predicted, names)
        sb = classification_metrics(labels, b.predicted, names)
        for m in metrics:
            observed[m] += np.array([sa[m], sb[m]]) / len(pairs)

    # Confusion cell of each utterance, per run: swapping predictions = swapping codes.
    codes = [(labels * classes + a.predicted, labels * classes + b.predicted) for a, b in pairs]
    rng = np.random.default_rng(seed)
    boot = {m: [] for m in metrics}
    perm = {m: [] for m in metrics}
    for start in range(0, resamples, CHUNK):
        r = min(CHUNK, resamples - start)
        draws = rng.integers(0, n, size=(r, n))  # (R, N), one utterance draw shared by every pair
        diff_boot = {m: np.zeros(r) for m in metrics}
        diff_perm = {m: np.zeros(r) for m in metrics}
        for code_a, code_b in codes:
            swap = rng.random((r, n)) < 0.5  # (R, N), drawn per pair: the null swaps each pair's runs
            confs = [_confusions_of_codes(code_a[draws], classes), _confusions_of_codes(code_b[draws], classes),
                     _confusions_of_codes(np.where(swap, code_b, code_a), classes),
                     _confusions_of_codes(np.where(swap, code_a, code_b), classes)]
            for m in metrics:
                boot_a, boot_b, perm_a, perm_b = (scores_from_confusions(c, m, names) for c in confs)
                diff_boot[m] += (boot_b - boot_a) / len(pairs)
                diff_perm[m] += (perm_b - perm_a) / len(pairs)
        for m in metrics:
            boot[m].append(diff_boot[m])
            perm[m].append(diff_perm[m])

    out = {}
    tail = (1 - confidence) / 2
    for m in metrics:
        a_score, b_score = observed[m]
        diff = b_score - a_score
        d_boot, d_perm = np.concatenate(boot[m]), np.concatenate(perm[m])
        low, high = np.quantile(d_boot, [tail, 1 - tail])
        # Tolerance: numpy and scikit-learn may round the same score differently in the last bit.
        extreme = int(np.sum(np.abs(d_perm) >= abs(diff) - 1e-9))
        out[m] = Comparison(m, float(a_score), float(b_score), float(diff), float(low), float(high), confidence,
                            (1 + extreme) / (resamples + 1), resamples, n,
                            [(a.seed, b.seed) for a, b in pairs])
    return out


# --- Entry points: two run folders, groups of runs, table marks ----------------------------

def _run_dir(run) -> Path:
    """A run folder from a path (folder or its result.json) or a result read by merbench (``Result``)."""
    if isinstance(run, Result):
        return run.run_dir
    path = Path(run)
    return path.parent if path.name == run_folder.RESULT else path


def load_side(path: Path, split: str = "test") -> list[RunPredictions]:
    """A run folder, or a folder holding the seeds of one recipe (seed-matched later)."""
    group = one_group(Path(path), "give one run folder or a folder of seeds of one recipe")
    return [load_predictions(_run_dir(r), split) for r in group.results]


def significance(run_a: Path, run_b: Path, metric: str = "wf1", split: str = "test", *,
                 resamples: int = 10_000, confidence: float = 0.95, seed: int = 0) -> Comparison:
    """B - A in ``metric`` on ``split``: bootstrap interval and permutation p-value."""
    a, b = load_side(run_a, split), load_side(run_b, split)
    return compare(a, b, [metric], resamples=resamples, confidence=confidence, seed=seed)[metric]


def not_significantly_worse(best_runs, other_runs, metric: str = "wf1", split: str = "test", *,
                            resamples: int = 10_000, seed: int = 0, alpha: float = 0.05) -> bool:
    """True when ``other_runs`` do not differ significantly from ``best_runs`` (p >= alpha).

    Runs are folders, result.json paths, or result dicts from ``merbench.aggregate``; several
    per side are seed-matched. The test is two-sided, so for a side that is not the best this
    reads "not significantly worse".
    """
    best = [load_predictions(_run_dir(r), split) for r in best_runs]
    other = [load_predictions(_run_dir(r), split) for r in other_runs]
    return compare(best, other, [metric], resamples=resamples, seed=seed)[metric].p_value >= alpha


DAGGER = "†"


def mark_not_significant(table, groups, layout: str, split: str = "test", *, resamples: int = 10_000,
                         seed: int = 0, alpha: float = 0.05):
    """Add a dagger to every cell not significantly different from its column's best.

    Rule: in each column the best row (bold, by mean over seeds) is compared with every other
    row by ``compare`` on seed-matched pairs of runs (lowest seeds when none is shared);
    a cell gets a dagger when p >= ``alpha``. Rows are the table's groups, in order.
    """
    # start-up: tabulate only when this runs
    from merbench.tables import columns_for

    if layout != "iemocap":
        raise MerbenchError("--significance: needs a classification table (layout iemocap); "
                            "regression metrics have no significance test here")
    columns = [m for m, _ in columns_for(groups, layout)]
    sides = {}

    def side(i: int) -> list[RunPredictions]:
        if i not in sides:
            sides[i] = [load_predictions(_run_dir(r), split) for r in groups[i].results]
        return sides[i]

    cached: dict[tuple[int, int], dict[str, Comparison]] = {}
    for j, metric in enumerate(columns):
        means = [(row[j].mean, i) for i, row in enumerate(table.cells) if row[j] is not None]
        if len(means) < 2:
            continue
        best_value = max(means)[0]
        best = next(i for value, i in means if value == best_value)
        for value, i in means:
            if value == best_value:
                continue
            if (best, i) not in cached:
                cached[(best, i)] = compare(side(best), side(i), columns, resamples=resamples, seed=seed)
            if cached[(best, i)][metric].p_value >= alpha:
                table.rows[i][j + 1].marks += DAGGER
    table.notes.append(f"{DAGGER} not significantly different from the best of its column (two-sided paired "
                       f"permutation test, p >= {alpha:g}, {resamples} resamples, seed-matched runs)")
    return table
