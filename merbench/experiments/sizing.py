"""How big a grid is before it starts: its cells, how many already finished, and the time left.

The estimate comes from runs that already finished: for each cell still to train, the mean
time per epoch (``training.seconds`` over ``selection.epochs_run``, from result.json) of the
finished runs of the same model on the same dataset found under the grid's ``--out`` folder
(this grid's cells and other grids'), times the cell's ``train.max_epochs``: 2-epoch smoke runs
size a 50-epoch grid, and early stopping can only make it shorter. Cells of a model never
timed there have no estimate, and the line says so rather than guess. Cells trained side by
side (``--jobs N``) divide the time by N. It is a rough figure: process start, data loading
and feature extraction are not in it, and a run with other modalities, arguments or corpus
size of the same model counts as the same model.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from merbench import run_folder
from merbench.errors import MerbenchError
from merbench.grid.manifest import GridCell, unique
from merbench.recipe import Recipe, read_back
from merbench.results import read_result


@dataclass
class Estimate:
    """The size of a grid and the time its unfinished cells should take."""

    cells: int  # unique cells (run folders)
    finished: int  # already finished in the grid folder: reused, not trained
    parallel: int  # cells trained at once
    seconds: float | None  # estimated wall time of the cells still to train; None: no basis
    timed: int  # cells still to train that have a basis
    basis: dict[str, int] = field(default_factory=dict)  # "model on dataset" -> finished runs timed
    untimed: list[str] = field(default_factory=list)  # "model on dataset" with no finished run
    epochs: list[int] = field(default_factory=list)  # max_epochs of the timed cells still to train

    @property
    def todo(self) -> int:
        return self.cells - self.finished

    def describe(self) -> str:
        """'126 cells (0 finished, 126 to train); estimate ...' in one line."""
        head = f"{self.cells} cell{'s' if self.cells != 1 else ''} ({self.finished} finished, {self.todo} to train)"
        if not self.todo:
            return head + "; nothing to train"
        at_once = f", {self.parallel} at a time" if self.parallel > 1 else ""
        if self.seconds is None:
            return head + f"; no estimate (no finished run of {', '.join(self.untimed)} to time from)"
        sources = ", ".join(f"{n} run{'s' if n != 1 else ''} of {key}" for key, n in self.basis.items())
        epochs = sorted(set(self.epochs))
        up_to = "/".join(str(e) for e in epochs) if len(epochs) <= 3 else f"{epochs[0]}-{epochs[-1]}"
        text = (f"{head}; estimate {duration(self.seconds)}{at_once} for up to {up_to} epoch"
                f"{'s' if epochs != [1] else ''} a cell (from the time per epoch of {sources})")
        if self.untimed:
            text += (f"; {self.todo - self.timed} cell(s) of {', '.join(self.untimed)} not included "
                     f"(no finished run to time from)")
        return text


def duration(seconds: float) -> str:
    """'40 s', '12 min', '2.1 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _key(recipe: Recipe) -> str:
    return f"{recipe.model.name} on {recipe.dataset.name}"


def finished_seconds(search: Path) -> dict[str, list[float]]:
    """"model on dataset" -> training seconds per epoch of every finished run under ``search``."""
    out: dict[str, list[float]] = {}
    if not Path(search).is_dir():
        return out
    for path in Path(search).rglob(run_folder.RESULT):
        try:
            result = read_result(path)
            key = _key(read_back(result.recipe, f"{path}: recipe"))
        except MerbenchError:
            continue  # a damaged or foreign file times nothing
        if result.ok and result.seconds is not None:
            out.setdefault(key, []).append(float(result.seconds) / max(1, result.selection.epochs_run))
    return out


def parallelism(options, todo: int) -> int:
    """Cells trained at once by ``options`` (``grid.RunnerOptions``), as the runners decide."""
    if options is None:
        return 1
    if options.launcher is None:
        at_once = options.jobs or 1
    elif options.launcher == "slurm":
        at_once = options.jobs or todo
    else:
        at_once = options.jobs or max(1, (os.cpu_count() or 1) // options.threads)
    return max(1, min(at_once, max(todo, 1)))


def estimate(cells: list[GridCell], grid_dir: Path, search: Path | None = None, options=None) -> Estimate:
    """Size ``cells`` of the grid in ``grid_dir``; timings from finished runs under ``search``
    (default: the grid's parent, the command's ``--out``)."""
    cells = unique(cells)
    grid_dir = Path(grid_dir)
    todo = [c for c in cells if not run_folder.is_finished(grid_dir / c.run)]
    timings = finished_seconds(search if search is not None else grid_dir.parent)
    total, timed, basis, untimed, epochs = 0.0, 0, {}, [], []
    for cell in todo:
        key = _key(cell.spec)
        if timings.get(key):
            epochs.append(cell.spec.train.max_epochs)
            total += statistics.mean(timings[key]) * epochs[-1]
            timed += 1
            basis[key] = len(timings[key])
        elif key not in untimed:
            untimed.append(key)
    parallel = parallelism(options, len(todo))
    seconds = total / parallel if timed else None
    return Estimate(len(cells), len(cells) - len(todo), parallel, seconds, timed, basis, untimed, epochs)
