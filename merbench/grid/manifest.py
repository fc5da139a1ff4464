"""Grid cells and the grid's manifest, ``grid.json``.

A cell is one training run: a resolved recipe (its ``train.seed`` is the cell's seed), the
labels the experiment tables it by (row, column, ...), and its run folder name, which is
``run_folder.run_name(recipe)``: the same recipe, seed, code and data always land in the same folder, so
a finished cell is found and reused. The manifest is rewritten by every command that runs the
grid and lists the cells of that command; run folders of earlier commands stay in the folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from merbench import run_folder
from merbench.errors import MerbenchError, excerpt
from merbench.recipe import Recipe, read_back
from merbench.results import load_json, utc_now, write_json

MANIFEST = "grid.json"
MANIFEST_SCHEMA = 1
ERROR = "error.txt"  # one-line error, then the traceback, of a cell whose training raised
RUNNING = "running.json"  # host and pid of the process training the cell, while it runs


@dataclass
class GridCell:
    recipe: dict  # resolved (merbench.recipe.validate) recipe, as written: grid.json and the workers get it
    labels: dict = field(default_factory=dict)  # what the experiment tables the cell by
    run: str = ""  # run folder name inside the grid folder
    # The recipe typed: the validated ``Recipe`` the cell was made from, or the mapping read back
    # (``recipe.read_back``: a manifest an older merbench wrote still reads).
    spec: Recipe | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.recipe, Recipe):  # a validated recipe: the cell keeps it as written
            self.spec, self.recipe = self.spec or self.recipe, self.recipe.as_dict()
        if self.spec is None:
            self.spec = read_back(self.recipe, f"grid cell {self.run or '(planned)'}: recipe")
        if not self.run:
            self.run = run_folder.run_name(self.recipe)

    @property
    def seed(self) -> int:
        return self.spec.train.seed

    def describe(self) -> str:
        """'off=attention modalities=S+T seed 0': short enough for a progress line."""
        shown = " ".join(f"{k}={v}" for k, v in self.labels.items())
        return f"{shown or self.spec.model.name} seed {self.seed}"


def unique(cells: list[GridCell]) -> list[GridCell]:
    """Cells in order, a repeated run folder once (two workers must never share a folder)."""
    seen: set[str] = set()
    out = []
    for cell in cells:
        if cell.run not in seen:
            seen.add(cell.run)
            out.append(cell)
    return out


def write_manifest(grid_dir: Path, kind: str, command: list[str], cells: list[GridCell],
                   extra: dict | None = None) -> None:
    write_json(Path(grid_dir) / MANIFEST, {
        "schema_version": MANIFEST_SCHEMA,
        "kind": kind,
        "command": command,
        "updated_utc": utc_now(),
        **(extra or {}),
        "cells": [{"run": c.run, "seed": c.seed, "labels": c.labels, "recipe": c.recipe} for c in cells],
    })


def read_manifest(grid_dir: Path) -> dict:
    """The manifest as a dict with ``cells`` as GridCell objects; a one-line error if absent."""
    path = Path(grid_dir) / MANIFEST
    data = load_json(path, f"no grid manifest (is {grid_dir} a grid folder written by "
                           f"ablate, heads-sweep or compare?)")
    if not isinstance(data, dict) or data.get("schema_version") != MANIFEST_SCHEMA or "cells" not in data:
        raise MerbenchError(f"{path}: not a merbench grid manifest (expected schema_version "
                            f"{MANIFEST_SCHEMA} and a 'cells' list)")
    if not isinstance(data["cells"], list):
        raise MerbenchError(f"{path}: 'cells' is {type(data['cells']).__name__}; expected a list of cells")
    cells = []
    for number, c in enumerate(data["cells"], 1):
        problem = _cell_problem(c)
        if problem:
            raise MerbenchError(f"{path}: cell {number}: {problem}; expected a mapping with 'run' (a run folder "
                                f"name), 'labels' (a mapping) and 'recipe' (a mapping)")
        cells.append(GridCell(c["recipe"], c.get("labels", {}), c["run"],
                              read_back(c["recipe"], f"{path}: cell {c['run']}: recipe")))
    data["cells"] = cells
    return data


def _cell_problem(cell: object) -> str:
    """What is wrong with one cell of a manifest as read (empty: nothing)."""
    if not isinstance(cell, dict):
        return f"{excerpt(cell)} is not a mapping"
    for key, kind in (("run", str), ("recipe", dict), ("labels", dict)):
        if key not in cell and key != "labels":
            return f"no {key!r}"
        if key in cell and not isinstance(cell[key], kind):
            return f"{key!r} is {excerpt(cell[key])}"
    if Path(cell["run"]).name != cell["run"] or cell["run"] in ("", ".", ".."):
        return f"'run' {excerpt(cell['run'])} is not a folder name inside the grid folder"
    return ""
