"""Figures as PNG, PDF or SVG files (by the path's suffix): confusion matrices, F1 against
attention heads, robustness curves, a tuning study's history and parameter importances.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no global
backend switch), and written atomically: a temporary file in the target folder, then
``os.replace``, so a killed command never leaves a half-written figure. Figures read numbers
handed to them (from results files); they never train or score anything.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from merbench.atomic import atomic_open, output_file
from merbench.errors import MerbenchError

DPI = 150
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURE_FORMATS = ("png", "pdf", "svg")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_path(path: Path, option: str = "--figure") -> Path:
    """Check a figure path before any work: its suffix names the format (.png, .pdf or .svg)."""
    path = Path(path)
    if path.suffix.lower().lstrip(".") not in FIGURE_FORMATS:
        raise MerbenchError(f"{option} {path}: give a path ending in "
                            f"{', '.join('.' + f for f in FIGURE_FORMATS)} (the suffix sets the format)")
    return output_file(path, option)


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` in the format its suffix names, atomically."""
    path = figure_path(path, "figure")
    fmt = path.suffix.lower().lstrip(".")
    from matplotlib import rc_context

    # Vector formats get no timestamp and SVG fixed element ids: the same numbers, the same bytes.
    metadata = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}[fmt]
    with rc_context({"svg.hashsalt": "merbench"}), atomic_open(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=DPI, metadata=metadata)
    return path


def normalise_rows(confusion: np.ndarray) -> np.ndarray:
    """Each row (true class) divided by its count; a class absent from the split stays 0."""
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)


def _draw_confusion(ax, confusion: np.ndarray, label_names: Sequence[str], title: str | None) -> None:
    norm = normalise_rows(confusion)
    ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    names = [n.capitalize() for n in label_names]
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    for i in range(norm.shape[0]):
        for j in range(norm.shape[1]):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title, fontsize=9)


def confusion_plot(panels: Sequence[tuple[str, np.ndarray, Sequence[str]]], path: Path) -> Path:
    """Row-normalised confusion matrices (the HFF paper's Fig. 5), one panel each, in a grid.

    ``panels``: ``(title, confusion (C, C) counts with rows = true class, label names)``.
    Each cell shows the share of the row's true class predicted as the column's class.
    """
    if not panels:
        raise MerbenchError("no confusion matrix to draw")
    for title, confusion, names in panels:
        shape = np.asarray(confusion).shape
        if shape != (len(names), len(names)):
            raise MerbenchError(f"{title}: confusion matrix of shape {shape} does not match {len(names)} classes")
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    size = 0.55 * max(len(p[2]) for p in panels) + 1.6
    fig = _figure(size * cols, size * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (title, confusion, names) in zip(axes.flat, panels):
        _draw_confusion(ax, np.asarray(confusion), names, title)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    return save_figure(fig, path)


def heads_plot(rows: Sequence[tuple[int, dict[str, tuple[float, float]]]], path: Path, *,
               ylabel: str = "WF1 (%)", title: str | None = None) -> Path:
    """F1 against the number of attention heads, one line per dataset, error bars = std.

    ``rows``: ``[(heads, {dataset: (mean, std)}), ...]``, e.g.
    ``[(1, {"iemocap": (66.1, 0.4)}), (2, {"iemocap": (67.0, 0.3)})]``; a dataset absent at
    some head count is drawn without that point. Rows may come in any order.
    """
    if not rows:
        raise MerbenchError("no head counts to plot")
    rows = sorted(rows, key=lambda r: r[0])
    datasets = sorted({name for _, scores in rows for name in scores})
    fig = _figure(5.0, 3.4)
    ax = fig.subplots()
    for name in datasets:
        points = [(h, scores[name]) for h, scores in rows if name in scores]
        heads = [h for h, _ in points]
        ax.errorbar(heads, [m for _, (m, _) in points], yerr=[s for _, (_, s) in points],
                    marker="o", capsize=3, label=name)
    all_heads = [h for h, _ in rows]
    ax.set_xscale("log", base=2)
    ax.set_xticks(all_heads, [str(h) for h in all_heads])
    ax.minorticks_off()
    ax.set_xlabel("attention heads")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def robustness_plot(curves: Sequence[tuple[str, Sequence[float], Sequence[float], float | None]], path: Path, *,
                    ylabel: str = "WF1 (%)", title: str | None = None) -> Path:
    """Metric against the noise level, one line per curve, the missing-modality score beside.

    ``curves``: ``[(label, levels, values, missing), ...]``: ``values[i]`` is the metric at
    noise ``levels[i]`` (multiples of the training std); ``missing`` (or None) is drawn as a
    separate marker in a "missing" column at the right of the levels.
    """
    if not curves:
        raise MerbenchError("no robustness curves to plot")
    levels = sorted({float(x) for _, lv, _, _ in curves for x in lv})
    position = {level: i for i, level in enumerate(levels)}  # evenly spaced levels read better
    fig = _figure(6.0, 3.6)
    ax = fig.subplots()
    for label, lv, values, missing in curves:
        line = ax.plot([position[float(x)] for x in lv], values, marker="o", label=label)[0]
        if missing is not None:
            ax.plot([len(levels)], [missing], marker="s", linestyle="none", color=line.get_color())
    ax.set_xticks(range(len(levels) + 1), [f"{x:g}" for x in levels] + ["missing"])
    ax.axvline(len(levels) - 0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("test-time noise (x training std per dimension)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def tune_history_plot(points: Sequence[tuple[int, float, str]], path: Path, *, ylabel: str,
                      lower_is_better: bool = False, title: str | None = None) -> Path:
    """A study's optimisation history: each trial's validation score by trial number, and the
    best score so far as a step line (Optuna's plot_optimization_history, drawn here).

    ``points``: ``[(trial number, value, state), ...]`` with ``state`` ``complete`` (a dot) or
    ``pruned`` (a cross at its last reported score; not a candidate for the best).
    """
    if not points:
        raise MerbenchError("no trial with a score to plot")
    points = sorted(points)
    fig = _figure(5.6, 3.4)
    ax = fig.subplots()
    complete = [(n, v) for n, v, state in points if state == "complete"]
    pruned = [(n, v) for n, v, state in points if state == "pruned"]
    if complete:
        ax.plot([n for n, _ in complete], [v for _, v in complete], "o", color="tab:blue", label="trial (complete)")
        best, steps = None, []
        for n, v in complete:
            best = v if best is None or (v < best if lower_is_better else v > best) else best
            steps.append((n, best))
        last = max(n for n, _, _ in points)
        ax.step([n for n, _ in steps] + [last], [b for _, b in steps] + [steps[-1][1]], where="post",
                color="tab:red", label="best so far")
    if pruned:
        ax.plot([n for n, _ in pruned], [v for _, v in pruned], "x", color="grey",
                label="trial (pruned, last epoch scored)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel + (" (lower is better)" if lower_is_better else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=8)
    return save_figure(fig, path)


def importance_plot(scores: dict[str, float], path: Path, *, title: str | None = None) -> Path:
    """Horizontal bars: each searched key's share of the variance of the validation score
    (``scores``: key -> importance, summing to 1, as Optuna's get_param_importances returns)."""
    if not scores:
        raise MerbenchError("no parameter importances to plot")
    items = sorted(scores.items(), key=lambda kv: kv[1])
    fig = _figure(5.0, 0.45 * len(items) + 1.2)
    ax = fig.subplots()
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    ax.set_xlabel("importance (fANOVA)")
    ax.grid(alpha=0.3, axis="x")
    if title:
        ax.set_title(title, fontsize=8)
    return save_figure(fig, path)


def group_confusions(groups, labels: Sequence[str], split: str = "test") -> list[tuple[str, np.ndarray, list[str]]]:
    """One panel per run group: the mean over its runs of the confusion counts of ``split``.

    The runs of a group are scored on the same utterances, so the mean of their counts,
    normalised by row, is the mean of their row-normalised matrices: every seed counts, as
    in the tables' mean ± std.
    """
    panels = []
    for group, label in zip(groups, labels):
        if group.dataset.task != "classification":
            raise MerbenchError(f"{label}: confusion matrices need a classification dataset "
                                f"({group.dataset.name} is {group.dataset.task})")
        matrices = [np.asarray(r.metrics[split]["confusion"], dtype=np.float64)
                    for r in group.results if "confusion" in r.metrics.get(split, {})]
        if not matrices:
            raise MerbenchError(f"{label}: no run of this row has {split} metrics")
        n = len(matrices)
        title = f"{label} ({group.dataset.name} {split}" + (f", mean of {n} runs)" if n > 1 else ")")
        panels.append((title, np.mean(matrices, axis=0), list(group.dataset.label_names)))
    return panels
