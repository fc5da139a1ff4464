"""Grids: many training runs in one folder, run by one runner, read back as results files.

A grid folder holds ``grid.json`` (the command line and every cell: resolved recipe, seed,
labels and run folder name) and one ordinary run folder per cell, written by
``merbench.train.train``. ``ablate``, ``heads-sweep`` and ``compare`` build the cells; the
runner (serial, ``--jobs N`` local processes, or submitit) trains the ones not finished yet;
the experiment code tables the result.json files. The runner never knows what a table is.

Modules: ``manifest`` (cells and grid.json), ``worker`` (trains one cell, records a failure),
``runners`` (serial, processes, submitit; progress display), ``status`` (what each cell is
doing, read from its folder). Nothing here imports torch at module level, so a spawned worker
can limit its threads before torch starts.
"""

from merbench.grid.manifest import GridCell, read_manifest
from merbench.grid.runners import GridRun, RunnerOptions, run_grid
from merbench.grid.status import CellState, grid_status

__all__ = ["CellState", "GridCell", "GridRun", "RunnerOptions", "grid_status", "read_manifest", "run_grid"]
