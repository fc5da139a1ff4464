"""merbench heads-sweep MODEL --heads 4,6,8,10 --dataset D [--dataset D2] [--seeds N] [--figure PATH]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench import api
from merbench.api import HEADS_FIGURE as FIGURE
from merbench.cli.common import user_errors
from merbench.cli.grid import GridOptions, finish, grid_command


@user_errors
@grid_command
def heads_sweep(
    model: str = typer.Argument(..., help="Registered model with a 'heads' argument, e.g. hff."),
    heads: str = typer.Option("4,6,8,10", "--heads", help="Head counts, comma-separated whole numbers of at least 1."),
    dataset: Optional[List[str]] = typer.Option(None, "--dataset", help="Dataset (repeatable): recipe recipes/<dataset>/<model>.yaml."),
    recipe: Optional[List[Path]] = typer.Option(None, "--recipe", help="A base recipe (repeatable, one per dataset), besides or instead of --dataset."),
    recipes: Optional[Path] = typer.Option(None, "--recipes", help="Folder of recipes laid out as <dataset>/<model>.yaml (default: ./recipes/<dataset>/<model>.yaml when present, else the packaged recipe)."),
    figure: Optional[Path] = typer.Option(None, "--figure", help=f"F1 against heads as PNG, PDF or SVG by the suffix (default: <grid folder>/{FIGURE})."),
    *,
    grid: GridOptions,
) -> None:
    """Train the model at each head count on each dataset: HFF Table 5 (ACC and F1 per dataset) and a plot."""
    report = api.heads_sweep(model, heads, datasets=list(dataset or []), recipe=list(recipe or []), recipes=recipes,
                             figure=figure, **grid.api())
    finish(report, grid.format)


def register(app: typer.Typer) -> None:
    app.command("heads-sweep")(heads_sweep)
