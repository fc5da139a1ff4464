"""Ablation grids in the layout of the HFF paper's Table 4.

Rows: the full model, then one row per component switched off (the model's constructor bool
of that name set to False; every other switch on). Columns: modality subsets (S = speech =
audio, T = text, V = vision). Cells: weighted F1 on the test split, mean ± std over seeds.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from merbench.aggregate import modality_label
from merbench.data.types import MODALITIES, MODALITY_LETTERS
from merbench.errors import MerbenchError
from merbench.experiments._common import (
    MAIN_METRIC, Plan, base_recipe, beside, find_tables, make_cell, metric_cell,
    paper_table, paper_tail, recipe_path, seeds_of, task_of, without_cell,
)
from merbench.grid import GridRun
from merbench.metrics import Metric
from merbench.models.build import model_class, model_defaults
from merbench.references import incomparable, run_features
from merbench.registry import MODELS, closest
from merbench.tables import Table

FULL = "none"  # the ``off`` label of the full model's cells
LETTERS = {letter: m for m, letter in MODALITY_LETTERS.items()}


def components_of(model: str) -> tuple[str, ...]:
    cls = model_class(model)  # an unknown model is a registry error naming the closest
    if not cls.components:
        with_switches = [e.name for e in MODELS.entries()
                         if not e.meta.get("tiny") and model_class(e.name).components]
        raise MerbenchError(f"model {model!r} has no ablation components ({cls.__name__}.components is "
                            f"empty); models with components: {', '.join(with_switches)}")
    return tuple(cls.components)


def parse_drops(model: str, drops: list[str]) -> list[str]:
    """``--drop a --drop b,c`` or ``--drop all`` -> switch names, in order, each once."""
    switches = components_of(model)
    names = [n.strip() for d in drops for n in d.split(",") if n.strip()]
    if not names:
        raise MerbenchError(f"--drop: name a component of {model!r} ({', '.join(switches)}) or all")
    out: list[str] = []
    for name in names:
        chosen = list(switches) if name == "all" else [name]
        if name != "all" and name not in switches:
            raise MerbenchError(f"--drop {name}: model {model!r} has no component {name!r}"
                                f"{closest(name, switches)}; its switches: {', '.join(switches)}, or all")
        out += [c for c in chosen if c not in out]
    return out


def subset_order(modalities: tuple[str, ...]) -> tuple[int, list[int]]:
    """The papers' column order: S, T, V, S+T, S+V, T+V, S+T+V."""
    return len(modalities), [MODALITIES.index(m) for m in modalities]


def all_subsets(modalities: list[str]) -> list[tuple[str, ...]]:
    ordered = [m for m in MODALITIES if m in modalities]
    return [c for k in range(1, len(ordered) + 1) for c in itertools.combinations(ordered, k)]


def parse_modalities(text: str | None, recipe_modalities: list[str]) -> list[tuple[str, ...]]:
    """'S+T+V,T' -> [('text',), ('audio', 'text', 'vision')]; default every subset of the recipe's."""
    if text is None:
        return all_subsets(recipe_modalities)
    subsets: list[tuple[str, ...]] = []
    for item in (i.strip() for i in text.split(",")):
        parts = [p.strip() for p in item.split("+")] if item else []
        names = [LETTERS.get(p.upper(), p.lower()) for p in parts]
        if not names or any(n not in MODALITIES for n in names) or len(set(names)) != len(names):
            raise MerbenchError(f"--modalities {item or text!r}: expected letters S (speech = audio), "
                                f"T (text), V (vision) joined by +, subsets separated by commas, e.g. S+T+V,T")
        subset = tuple(m for m in MODALITIES if m in names)
        if subset not in subsets:
            subsets.append(subset)
    return sorted(subsets, key=subset_order)


def full_model_section(model: dict, switches: tuple[str, ...]) -> dict:
    """Every switch on: defaults left implicit, a switch that defaults off set on."""
    defaults = model_defaults(model["name"])
    out = {k: v for k, v in model.items() if k not in switches}
    out.update({s: True for s in switches if defaults.get(s) is not True})
    return out


def plan(model: str, drops: list[str], dataset: str | None, recipe: Path | None, overrides: list[str],
         n_seeds: int, modalities: str | None, recipes: Path | None = None) -> Plan:
    """Validated cells: (full + each dropped switch) x modality subsets x seeds."""
    dropped = parse_drops(model, drops)
    if recipe is None and dataset is None:
        raise MerbenchError("--dataset or --recipe: say which data to ablate on (e.g. --dataset synthetic)")
    path = recipe or recipe_path(dataset, model, recipes)
    base, source = base_recipe(path, overrides)
    if base.model.name != model:
        raise MerbenchError(f"{source}: model.name is {base.model.name!r}, not {model!r} "
                            f"(pass a recipe of {model!r}, or --set model.name={model})")
    if dataset is not None and base.dataset.name != dataset:
        raise MerbenchError(f"{source}: dataset.name is {base.dataset.name!r}, not --dataset {dataset!r}")
    subsets = parse_modalities(modalities, list(base.dataset.modalities))
    switches = components_of(model)
    full = full_model_section(base["model"], switches)  # the section as written, edited per cell
    cells, same = [], []
    for off in [FULL] + dropped:
        for subset in subsets:
            if off != FULL and off not in model_class(model).active_components(subset):
                # The switch builds nothing for this subset: the cell is the full model's.
                same.append([off, modality_label(subset)])
                continue
            recipe_ = base.as_dict()
            recipe_["model"] = {**full, **({off: False} if off != FULL else {})}
            recipe_["dataset"]["modalities"] = list(subset)
            for seed in seeds_of(base, n_seeds):
                cells.append(make_cell(recipe_, source, seed, {"off": off, "modalities": modality_label(subset)}))
    ds = base.dataset.name
    return Plan(f"ablate-{model}-{ds}", cells, {
        "model": model, "dataset": ds, "dropped": dropped, "seeds": n_seeds,
        "columns": [modality_label(s) for s in subsets], "same_as_full": same})


def row_title(model: str, off: str) -> str:
    cls = model_class(model)
    if off == FULL:
        return getattr(cls, "title", f"{cls.__name__} (full model)")
    return getattr(cls, "component_titles", {}).get(off, f"Without {off}")


def tables(plan: Plan, run: GridRun, references: bool) -> list[Table]:
    info = plan.info
    rows = [FULL] + info["dropped"]
    columns = info["columns"]
    shared = {tuple(pair) for pair in info.get("same_as_full", [])}
    by_key = {(r, c): [x for x in plan.cells if x.labels == {"off": FULL if (r, c) in shared else r,
                                                               "modalities": c}]
              for r in rows for c in columns}
    metric = MAIN_METRIC[task_of(run, plan.cells) or "classification"]
    found = find_tables(lambda t: t.get("model") == info["model"] and "columns" in t) if references else []
    citation, _, paper = found[0] if found else (None, None, None)
    full_recipe = next(c.spec for c in plan.cells if c.labels["off"] == FULL)
    why = (f"dataset {info['dataset']}" if paper is None or paper.get("dataset") != info["dataset"]
           else incomparable(paper, None, run_features(full_recipe)))
    side = paper is not None and why is None and paper.get("metric") == metric

    def reported(row: str, col: str) -> float | None:
        return (paper["rows"].get("full" if row == FULL else row) or {}).get(col) if side else None

    cells = [[metric_cell(run, by_key[(r, c)], metric) for c in columns] for r in rows]
    text = [[row_title(info["model"], r)] + [beside(cell, reported(r, c)) for cell, c in zip(row, columns)]
            for r, row in zip(rows, cells)]
    for i, r in enumerate(rows):
        for j, c in enumerate(columns):
            if (r, c) in shared:
                text[i][j + 1].marks = "="
    title = (f"Ablation of {info['model']} on {info['dataset']}: {Metric.of(metric).title} (test), "
             f"mean ± std (n) over seeds (layout: HFF Table 4)")
    notes = []
    if side:
        notes.append(f"ours | paper (Δ = ours - paper); paper: {citation}")
    for r in rows:
        where = [c for c in columns if (r, c) in shared]
        if where:
            notes.append(f"= the full model's runs: with {', '.join(where)} {r!r} builds nothing, so "
                         f"'{row_title(info['model'], r)}' is the same model there and is not trained again")
    if run.failed:
        notes.append(f"{len(run.failed)} failed cell(s) left out (merbench grid status {run.grid_dir})")
    # A cell whose model went without components its recipe turned on (e.g. HRDF-MER's CAA
    # and CMDF on text alone) is marked ‡, with a note under the table.
    without = {(i, j + 1): w for i, r in enumerate(rows) for j, c in enumerate(columns)
               if (w := without_cell(run, by_key[(r, c)])) is not None}
    out = [Table(title, ["Model"] + columns, text, [False] * len(columns), notes, without=without)]
    if not references:
        return out
    return paper_tail(out, paper, side, f"ablation of {info['model']!r}",
                      lambda: reference_table(paper, citation, rows, columns, why or f"metric {metric}"))


def reference_table(paper: dict, citation: str, rows: list[str], columns: list[str], why: str) -> Table:
    """The paper's own numbers, below ours: its dataset, features or metric are not the grid's."""
    cols = [c for c in columns if c in paper["columns"]] or list(paper["columns"])
    keys = [("full" if r == FULL else r) for r in rows]
    keys = [k for k in keys if k in paper["rows"]] or list(paper["rows"])
    titles = paper.get("row_titles", {})
    return paper_table(paper, citation, f"{paper.get('dataset')}, {paper.get('metric')}; not comparable: {why}",
                       "Model", [(titles.get(k, k), k) for k in keys], cols)
