"""What the grid experiments share: recipe files, seeds, metric cells, paper numbers beside ours."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from merbench.aggregate import Cell
from merbench.errors import MerbenchError
from merbench.grid import GridCell, GridRun
from merbench.recipe import Recipe, apply_overrides, override_text, read_recipe_file, validate
from merbench.recipe_paths import recipe_for
from merbench.references import load_reference, reference_names
from merbench.tables import Table, Value, Without, without_of

SPLIT = "test"
# Classification tables report weighted F1; for a regression dataset (MOSEI) the F1 and ACC-2
# that the HFF paper's MOSEI columns use, with zero counted as positive (has0).
MAIN_METRIC = {"classification": "wf1", "regression": "f1_has0"}
ACC_METRIC = {"classification": "acc", "regression": "acc2_has0"}


@dataclass
class Plan:
    """Validated cells of one experiment, plus what its tables need to lay them out."""

    name: str  # the grid folder's name
    cells: list[GridCell]
    info: dict = field(default_factory=dict)


def recipe_path(dataset: str, model: str, root: Path | None = None) -> Path:
    """The recipe of ``model`` on ``dataset`` by the one rule of ``merbench.recipe_paths``."""
    return recipe_for(dataset, model, root)


def base_recipe(path: Path, overrides: list[str]) -> tuple[Recipe, str]:
    """The resolved recipe of ``path`` with ``--set`` overrides; the file must stand on its own."""
    raw = read_recipe_file(Path(path))
    resolved = validate(raw, str(path))
    if overrides:
        resolved = validate(apply_overrides(raw, overrides), f"{path} --set {' '.join(map(override_text, overrides))}")
    # start-up: torch only when this runs
    from merbench.models.build import check_available

    check_available(resolved.model.name)  # a missing optional library stops the grid before it starts
    return resolved, str(path)


def seeds_of(recipe: Recipe, n: int) -> list[int]:
    """``n`` seeds counting up from the recipe's ``train.seed``."""
    if n < 1:
        raise MerbenchError(f"--seeds {n}: expected the number of seeds, at least 1")
    first = recipe.train.seed
    return [first + i for i in range(n)]


def make_cell(recipe: Recipe | dict, source: str, seed: int, labels: dict) -> GridCell:
    """A copy of ``recipe`` (already changed for this cell) with ``seed``, validated again."""
    out = recipe.as_dict() if isinstance(recipe, Recipe) else copy.deepcopy(recipe)
    out["train"]["seed"] = seed
    where = ", ".join(f"{k}={v}" for k, v in labels.items())
    return GridCell(validate(out, f"{source} ({where}, seed {seed})"), dict(labels))


def metric_cell(run: GridRun, cells: list[GridCell], metric: str) -> Cell | None:
    """Mean ± std over the finished cells' test ``metric`` (failed cells left out)."""
    values = []
    for c in cells:
        result = run.result(c)
        if result and metric in result.metrics.get(SPLIT, {}):
            values.append(result.metrics[SPLIT][metric])
    return Cell(values) if values else None


def without_cell(run: GridRun, cells: list[GridCell]) -> Without | None:
    """What the finished cells' model went without (switches on that built nothing), if anything."""
    return without_of([run.result(c) for c in cells if run.result(c)])


def task_of(run: GridRun, cells: list[GridCell]) -> str | None:
    for c in cells:
        if run.result(c):
            return run.result(c).dataset.task
    return None


def outside(ours: Cell, paper: float) -> bool:
    """Outside the reported number's range: paper ± 2 x our std over seeds, or ± 1 point for n = 1."""
    width = 2 * ours.std if ours.n > 1 else 1.0
    return abs(ours.mean - paper) > width + 1e-9


def beside(ours: Cell | None, paper: float | None, digits: int = 1, mark: bool = False) -> Value:
    """Ours, with the paper's number beside it; ``mark`` adds † when ours is outside its range."""
    value = Value(ours, digits, paper)
    if mark and ours is not None and paper is not None and outside(ours, paper):
        value.marks = "†"
    return value


def find_tables(match) -> list[tuple[str, str, dict]]:
    """(citation, table name, table) of every reference table for which ``match(table)`` holds."""
    found = []
    for name in reference_names():
        ref = load_reference(name)
        for key, table in (ref.get("tables") or {}).items():
            if isinstance(table, dict) and match(table):
                found.append((ref["citation"], key, table))
    return found


def paper_tail(out: list[Table], paper: dict | None, side: bool, missing: str, reported) -> list[Table]:
    """With ``--references``, after our tables: a note when recipes/references/ holds no
    ``missing`` ("ablation of 'hff'"), or, when the paper's numbers could not stand beside ours
    (``side`` False), the paper's own table below ours, built by ``reported()``."""
    if paper is None:
        out[0].notes.append(f"no reported {missing} in recipes/references/")
    elif not side:
        out.append(reported())
    return out


def paper_table(paper: dict, citation: str, context: str, corner: str, rows: list[tuple[str, object]],
                columns: list[str]) -> Table:
    """The paper's numbers as it printed them: ``rows`` are (label, key of ``paper["rows"]``),
    ``context`` says in the title why they are not set beside ours."""
    text = [[label] + [str(paper["rows"][key].get(c, "-")) for c in columns] for label, key in rows]
    return Table(f"Reported by the paper: {paper.get('title', '')} ({context})", [corner] + list(columns), text,
                 notes=[f"paper: {citation}"])
