"""Model comparisons on one dataset in the layout of the dataset's paper table.

Classification (IEMOCAP-style, MELD): per-class F1, ACC, weighted F1 (HFF Table 3 layout).
Regression (MOSEI-style): ACC-7, ACC-2, F1, MAE, Corr (HFF Table 2 layout). The layout comes
from ``merbench.tables.results_table``; this module adds the papers' numbers and efficiency.

With ``--references`` every cell that a reference file reports for this dataset and model
reads "ours | paper (Δ ours - paper)", and gets † when ours lies outside the reported number's
range, defined as paper ± 2 x our std over seeds, or ± 1 point when there is one seed: a
reported number that our seeds do not reach within two standard deviations. A paper's number
for other modalities or other features than the runs' is not set beside them; a note says
why (``merbench.references.incomparable``).
"""

from __future__ import annotations

from pathlib import Path

from merbench.aggregate import Cell, Group, by_data, group_key
from merbench.errors import MerbenchError
from merbench.experiments._common import (
    Plan, base_recipe, beside, find_tables, make_cell, recipe_path, seeds_of,
)
from merbench.grid import GridRun
from merbench.metrics import Metric
from merbench.recipe_paths import recipe_roots
from merbench.references import incomparable, run_features
from merbench.registry import MODELS
from merbench.tables import Table, columns_for, layout_for, results_table
from merbench.experiments.sizing import duration
from merbench.tuning.tune import BEST, folder_name, read_manifest

# A reference table's metric name when it differs from ours. The HFF paper's MOSEI "ACC-2"
# does not say whether zero counts as positive; it is set beside ACC-2 (has0), as in heads-sweep.
PAPER_METRIC = {"acc2_has0": "acc2"}
RANGE_NOTE = "† = ours outside the paper's number ± 2 x our std over seeds (± 1 point for one seed)"


def model_names(dataset: str, models: str, root: Path | None) -> list[str]:
    """'tfn,mfn' -> those names (each checked); 'all' -> every non-tiny model with a recipe
    (in ``root``, else here or packaged: ``merbench.recipe_paths``)."""
    if models.strip() == "all":
        roots = recipe_roots(root)
        names = [e.name for e in MODELS.entries()
                 if not e.meta.get("tiny") and any((r / dataset / f"{e.name}.yaml").exists() for r in roots)]
        if not names:
            raise MerbenchError(f"{roots[0] / dataset}: no recipe of any registered (non-tiny) model "
                                f"(expected {roots[0] / dataset}/<model>.yaml)")
        return names
    names: list[str] = []
    for name in (n.strip() for n in models.split(",")):
        if not name:
            continue
        MODELS.entry(name)  # an unknown name is a one-line error with the closest names
        if name not in names:
            names.append(name)
    if not names:
        raise MerbenchError(f"--models {models!r}: expected model names separated by commas, or all")
    return names


def plan(dataset: str, models: str, overrides: list[str], n_seeds: int, recipes: Path | None = None,
         tuned: Path | None = None) -> Plan:
    """Validated cells: models x seeds, each from <recipes>/<dataset>/<model>.yaml (default: ./recipes
    when it holds one, else the packaged recipe); with ``tuned``, from each model's
    <tuned>/tune-<model>-<dataset>/best.yaml, the tuning budget of each kept for the table."""
    if tuned is not None and recipes is not None:
        raise MerbenchError("--tuned and --recipes: choose one (--tuned takes each model's recipe from its "
                            "tune folder's best.yaml)")
    names = model_names(dataset, models, recipes) if tuned is None or models.strip() != "all" \
        else tuned_names(dataset, tuned)
    cells, budgets = [], {}
    for name in names:
        if tuned is not None:
            path, budgets[name] = tuned_recipe(tuned, name, dataset)
        else:
            path = recipe_path(dataset, name, recipes)
        base, source = base_recipe(path, overrides)
        for seed in seeds_of(base, n_seeds):
            cells.append(make_cell(base, source, seed, {"model": name}))
    info = {"dataset": dataset, "models": names, "seeds": n_seeds}
    if tuned is not None:
        info["tuned"] = {"folder": str(tuned), "budgets": budgets}
    return Plan(f"compare-{dataset}" + ("-tuned" if tuned is not None else ""), cells, info)


def tuned_names(dataset: str, tuned: Path) -> list[str]:
    """``--models all --tuned DIR``: every model with a best.yaml for ``dataset`` under DIR."""
    names = [e.name for e in MODELS.entries() if (tuned / folder_name(e.name, dataset) / BEST).is_file()]
    if not names:
        raise MerbenchError(f"{tuned}: no tune-<model>-{dataset}/{BEST} (run merbench tune MODEL --dataset "
                            f"{dataset} --out {tuned} first)")
    return names


def tuned_recipe(tuned: Path, model: str, dataset: str) -> tuple[Path, dict]:
    """A model's best.yaml in ``tuned`` and its study's budget (from tune.json beside it)."""
    folder = tuned / folder_name(model, dataset)
    path = folder / BEST
    if not path.is_file():
        raise MerbenchError(f"{path}: no tuned recipe for model {model!r} on {dataset!r} (run merbench tune "
                            f"{model} --dataset {dataset} --out {tuned} first)")
    manifest = read_manifest(folder)
    if not manifest.get("best"):
        raise MerbenchError(f"{folder / 'tune.json'}: the study {manifest['study']['name']} has no complete trial, so "
                            f"{path} is not its best (run merbench tune {model} --dataset {dataset} with more trials)")
    return path, {**manifest["budget"], "study": manifest["study"]["name"], "sampler": manifest["study"]["sampler"],
                  "best_trial": (manifest.get("best") or {}).get("number")}


def groups(plan: Plan, run: GridRun) -> list[Group]:
    """One group per model with its finished runs (models with none left out)."""
    out = []
    for name in plan.info["models"]:
        cells = [c for c in plan.cells if c.labels["model"] == name]
        results = [run.result(c) for c in cells if run.result(c)]
        if results:
            key, shared = group_key(results[0].recipe)
            out.append(Group(key, shared, results, failed=len(cells) - len(results)))
    return out


def reported_rows(dataset: str) -> list[tuple[str, dict]]:
    """(citation, table) of the reference tables that compare models on ``dataset``."""
    return [(cit, t) for cit, _, t in find_tables(lambda t: t.get("dataset") == dataset and "model" not in t
                                                   and isinstance(t.get("rows"), dict))]


def reported(tables: list[tuple[str, dict]], model: str, metric: str) -> tuple[float | None, str | None]:
    for citation, table in tables:
        row = table["rows"].get(model) or {}
        value = row.get(metric, row.get(PAPER_METRIC.get(metric, "")))
        if value is not None:
            return float(value), citation
    return None, None


def tables(plan: Plan, run: GridRun, references: bool, efficiency: dict | None = None) -> list[Table]:
    """``efficiency``: {"latency": {model: ms per utterance}, "device": "CPU, 1 thread"}."""
    found = groups(plan, run)
    if not found:
        raise MerbenchError(f"no model finished a run on {plan.info['dataset']} "
                            f"(merbench grid status {run.grid_dir})")
    # Recipes that read other data (features, protocol) give one table each, never one ranking.
    return [_table(plan, part.groups, part.differs, references, efficiency) for part in by_data(found)]


def _table(plan: Plan, found: list[Group], differs: list[str], references: bool, efficiency: dict | None) -> Table:
    table = results_table(found, differs=differs)
    metrics = [m for m, _ in columns_for(found, layout_for(found, None))]
    if references:
        refs = reported_rows(plan.info["dataset"])
        used, refused = [], []
        for i, group in enumerate(found):
            usable = []
            for citation, t in refs:
                why = incomparable(t, group.modalities, run_features(group.spec))
                if why is None:
                    usable.append((citation, t))
                elif group.model in t["rows"]:
                    refused.append(f"{group.model}: the paper's numbers ({t.get('title', 'reference table')}) "
                                   f"are not set beside: {why}")
            for j, metric in enumerate(metrics):
                value, citation = reported(usable, group.model, metric)
                if value is not None:
                    table.rows[i][j + 1] = beside(table.cells[i][j], value, Metric.of(metric).digits, mark=True)
                    used += [citation] if citation not in used else []
        if used:
            table.notes += ["ours | paper (Δ = ours - paper); " + RANGE_NOTE] + [f"paper: {c}" for c in used]
            if "acc2_has0" in metrics:
                table.notes.append("the paper's ACC-2 is set beside ACC-2 (has0); it does not say which ACC-2")
        elif not refused:
            table.notes.append(f"no reported numbers for dataset {plan.info['dataset']!r} in recipes/references/")
        table.notes += refused
    if efficiency is not None:
        add_efficiency(table, found, efficiency)
    if "tuned" in plan.info:
        add_budgets(table, found, plan.info["tuned"])
    table.title = "Compare: " + table.title
    return table


def add_efficiency(table: Table, found: list[Group], efficiency: dict) -> None:
    """Parameters, training seconds per epoch, inference milliseconds per utterance."""
    table.columns += ["Params", "s / epoch", f"ms / utt ({efficiency['device']})"]
    for row, group in zip(table.rows, found):
        per_epoch = Cell([r.seconds / max(1, r.selection.epochs_run) for r in group.results])
        latency = efficiency["latency"].get(group.model)
        row += [f"{group.results[0].model.parameters:,}", f"{per_epoch.mean:.2f}",
                "-" if latency is None else f"{latency:.3f}"]
    table.notes.append("s / epoch: training-loop wall time (validation included) / epochs run, mean over seeds "
                       "(cells trained side by side with --jobs share the machine); ms / utt: test-split "
                       "prediction of one run's best checkpoint, evaluation batching, median of 3 passes")


def add_budgets(table: Table, found: list[Group], tuned: dict) -> None:
    """A Tuning column (trials and trial time of each row's study) and a note that says whether
    every row got the same effort."""
    table.columns += ["Tuning (trials, time)"]
    for row, group in zip(table.rows, found):
        b = tuned["budgets"][group.model]
        row += [f"{b['trials']} ({b['pruned']} pruned), {duration(b['trial_seconds'])}"]
    budgets = {m: tuned["budgets"][m]["trials"] for m in (g.model for g in found)}
    samplers = {tuned["budgets"][m]["sampler"] for m in budgets}
    same = len(set(budgets.values())) == 1 and len(samplers) == 1
    table.notes.append(f"each row: {tuned['folder']}/tune-<model>-<dataset>/best.yaml, chosen on validation by "
                       f"merbench tune; " + (f"every row tuned with {next(iter(budgets.values()))} trials of the "
                                             f"{next(iter(samplers))} sampler" if same else
                                             "the rows' tuning budgets differ: "
                                             + ", ".join(f"{m} {n} trials" for m, n in budgets.items())))
