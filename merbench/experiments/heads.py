"""Attention-head sweeps in the layout of the HFF paper's Table 5.

Rows: head counts (the model's ``heads`` argument). Columns: accuracy and F1 per dataset:
ACC and weighted F1 for a classification dataset; for a regression dataset (MOSEI) ACC-2 and
F1 with zero counted as positive (``acc2_has0``, ``f1_has0``), the binary scores the paper's
MOSEI columns appear to be (it does not say which; recipes/references/hff.yaml notes this).

With ``--references`` the paper's number is set beside ours only where the paper ran the same
modalities and features as the dataset's recipe (``merbench.references.incomparable``, as
``compare`` and ``ablate``); otherwise a note says why and the paper's table is printed below.
"""

from __future__ import annotations

from pathlib import Path

from merbench.errors import MerbenchError
from merbench.experiments._common import (
    ACC_METRIC, MAIN_METRIC, Plan, base_recipe, beside, find_tables, make_cell,
    metric_cell, paper_table, paper_tail, recipe_path, seeds_of, task_of, without_cell,
)
from merbench.figures import heads_plot
from merbench.grid import GridRun
from merbench.metrics import Metric
from merbench.models.build import build_model, model_defaults
from merbench.recipe import Recipe
from merbench.references import incomparable, run_features
from merbench.registry import MODELS
from merbench.tables import Table

PAPER_KEYS = {"acc": "acc", "acc2_has0": "acc", "wf1": "f1", "f1_has0": "f1"}  # ours -> Table 5's suffix


def parse_heads(text: str) -> list[int]:
    """'4,6,8,10' -> [4, 6, 8, 10]; anything but whole numbers of at least 1 is an error."""
    out: list[int] = []
    for item in (i.strip() for i in text.split(",")):
        try:
            value = int(item)
        except ValueError:
            value = 0
        if value < 1 or str(value) != item.lstrip("+"):
            raise MerbenchError(f"--heads {text}: {item!r} is not a head count (expected whole numbers of at "
                                f"least 1, e.g. 4,6,8,10)")
        if value not in out:
            out.append(value)
    return sorted(out)


def check_heads_argument(model: str) -> None:
    if "heads" not in model_defaults(model):
        having = [e.name for e in MODELS.entries() if not e.meta.get("tiny") and "heads" in model_defaults(e.name)]
        raise MerbenchError(f"model {model!r} has no 'heads' argument; models with one: {', '.join(having)}")


def check_buildable(recipe: Recipe, heads: int, source: str) -> None:
    """The model's constructor accepts this head count (e.g. hidden divisible by heads)."""
    dims = {m: 16 for m in recipe.dataset.modalities}  # placeholders: constructors check shapes only
    try:
        build_model(recipe.model.name, dims, 2, **{**recipe.model.args, "heads": heads})
    except (ValueError, AssertionError, MerbenchError) as e:
        raise MerbenchError(f"--heads {heads}: model {recipe.model.name!r} with {source} rejects it "
                            f"({str(e).splitlines()[0]})") from None
    except Exception:  # noqa: BLE001  placeholder dims may upset a constructor; training will tell
        pass


def plan(model: str, heads: str, datasets: list[str], recipes: list[Path], overrides: list[str],
         n_seeds: int, recipes_dir: Path | None = None) -> Plan:
    """Validated cells: datasets x head counts x seeds."""
    check_heads_argument(model)
    counts = parse_heads(heads)
    paths = [recipe_path(d, model, recipes_dir) for d in datasets] + list(recipes)
    if not paths:
        raise MerbenchError("--dataset or --recipe: say which data to sweep on (e.g. --dataset synthetic)")
    cells, names = [], []
    for path in paths:
        base, source = base_recipe(path, overrides)
        if base.model.name != model:
            raise MerbenchError(f"{source}: model.name is {base.model.name!r}, not {model!r}")
        name = base.dataset.name
        if name in names:
            raise MerbenchError(f"{source}: a second recipe for dataset {name!r} (one per dataset)")
        names.append(name)
        for h in counts:
            check_buildable(base, h, source)
            recipe = base.as_dict()
            recipe["model"]["heads"] = h
            for seed in seeds_of(base, n_seeds):
                cells.append(make_cell(recipe, source, seed, {"dataset": name, "heads": h}))
    return Plan(f"heads-{model}-{'-'.join(names)}", cells,
                {"model": model, "datasets": names, "heads": counts, "seeds": n_seeds})


def _paper(model: str):
    found = find_tables(lambda t: t.get("model") == model and t.get("parameter") == "heads")
    return found[0] if found else (None, None, None)


def series(plan: Plan, run: GridRun) -> dict[str, dict]:
    """Per dataset: task, the two metrics, and per head count the cells of each metric."""
    out = {}
    for ds in plan.info["datasets"]:
        ds_cells = [c for c in plan.cells if c.labels["dataset"] == ds]
        task = task_of(run, ds_cells) or "classification"
        metrics = [ACC_METRIC[task], MAIN_METRIC[task]]
        out[ds] = {"task": task, "metrics": metrics, "cells": {
            h: {m: metric_cell(run, [c for c in ds_cells if c.labels["heads"] == h], m) for m in metrics}
            for h in plan.info["heads"]}}
    return out


def reported(paper: dict | None, dataset: str, metric: str, heads: int) -> float | None:
    if paper is None:
        return None
    return (paper["rows"].get(heads) or {}).get(f"{dataset}_{PAPER_KEYS[metric]}")


def refusals(plan: Plan, paper: dict | None) -> dict[str, str]:
    """Dataset -> why the paper's numbers cannot stand beside its runs (other modalities or
    features than the dataset's recipe); datasets the paper has no numbers for are left out."""
    if paper is None:
        return {}
    out = {}
    for ds in plan.info["datasets"]:
        if not any(reported(paper, ds, m, h) is not None for h in paper["rows"] for m in PAPER_KEYS):
            continue
        recipe = next(c.spec for c in plan.cells if c.labels["dataset"] == ds)
        why = incomparable(paper, list(recipe.dataset.modalities), run_features(recipe))
        if why is not None:
            out[ds] = why
    return out


def tables(plan: Plan, run: GridRun, references: bool) -> list[Table]:
    info = plan.info
    data = series(plan, run)
    citation, _, paper = _paper(info["model"]) if references else (None, None, None)
    refused = refusals(plan, paper)
    columns, cells, text, without = [], [], [], {}
    for ds in info["datasets"]:
        columns += [f"{ds} {Metric.of(m).title}" for m in data[ds]["metrics"]]
    side = False
    for i, h in enumerate(info["heads"]):
        row_cells, row_text = [], [str(h)]
        for ds in info["datasets"]:
            ds_cells = [c for c in plan.cells if c.labels["dataset"] == ds and c.labels["heads"] == h]
            for m in data[ds]["metrics"]:
                cell = data[ds]["cells"][h][m]
                value = None if ds in refused else reported(paper, ds, m, h)
                side = side or value is not None
                row_cells.append(cell)
                row_text.append(beside(cell, value))
                # ‡: the model went without components its recipe turned on (e.g. on one modality).
                w = without_cell(run, ds_cells)
                if w is not None:
                    without[(i, len(row_text) - 1)] = w
        cells.append(row_cells)
        text.append(row_text)
    title = f"{info['model']}: attention heads (test, mean ± std (n) over seeds; layout: HFF Table 5)"
    notes = [f"ours | paper (Δ = ours - paper); paper: {citation}"] if side else []
    notes += [f"{ds}: the paper's numbers ({paper.get('title', 'reference table')}) are not set beside: {why}"
              for ds, why in refused.items()]
    if any(d["task"] == "regression" for d in data.values()):
        notes.append("regression datasets: ACC-2 and F1 with zero counted as positive (has0), as the "
                     "paper's MOSEI columns appear to be")
    if run.failed:
        notes.append(f"{len(run.failed)} failed cell(s) left out (merbench grid status {run.grid_dir})")
    out = [Table(title, ["Heads"] + columns, text, [False] * len(columns), notes, without=without)]
    if not references:
        return out

    def reference_table() -> Table:
        keys = list(paper.get("metrics") or next(iter(paper["rows"].values())))
        why = "; ".join(refused.values()) or f"no numbers for {', '.join(info['datasets'])}"
        return paper_table(paper, citation, f"not comparable with {', '.join(info['datasets'])}: {why}", "Heads",
                           [(str(h), h) for h in paper["rows"]], keys)

    return paper_tail(out, paper, side, f"head sweep of {info['model']!r}", reference_table)


def figure(plan: Plan, run: GridRun, path: Path, references: bool) -> Path:
    """F1 against head count, one line per dataset (and the paper's F1, with --references)."""
    data = series(plan, run)
    _, _, paper = _paper(plan.info["model"]) if references else (None, None, None)
    refused = refusals(plan, paper)
    rows = []
    for h in plan.info["heads"]:
        scores = {}
        for ds, d in data.items():
            metric = d["metrics"][1]
            cell = d["cells"][h][metric]
            if cell is not None:
                scores[f"{ds} {Metric.of(metric).title}"] = (cell.mean, cell.std)
            value = None if ds in refused else reported(paper, ds, metric, h)
            if value is not None:
                scores[f"{ds} F1 (paper)"] = (value, 0.0)
        rows.append((h, scores))
    return heads_plot(rows, Path(path), ylabel="F1 (test, %)",
                      title=f"{plan.info['model']}: F1 against attention heads (mean ± std over seeds)")
