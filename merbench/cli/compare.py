"""merbench compare --dataset D --models tfn,mfn,...|all [--seeds 3] [--references] [--efficiency]"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merbench.cli.common import user_errors
from merbench.cli.grid import GridOptions, finish, grid_command


@user_errors
@grid_command
def compare(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name: each model's recipe is recipes/<dataset>/<model>.yaml."),
    models: str = typer.Option(..., "--models", help="Comma-separated registered models, or all (every model with a recipe for the dataset)."),
    recipes: Optional[Path] = typer.Option(None, "--recipes", help="Folder of recipes laid out as <dataset>/<model>.yaml (default: ./recipes/<dataset>/<model>.yaml when present, else the packaged recipe)."),
    tuned: Optional[Path] = typer.Option(None, "--tuned", help="Folder of merbench tune folders: each model's recipe is its tune-<model>-<dataset>/best.yaml, and the table shows each row's tuning budget."),
    efficiency: bool = typer.Option(False, "--efficiency", help="Add parameters, training seconds per epoch and inference latency per utterance."),
    device: str = typer.Option("auto", "--device", help="With --efficiency: where latency is measured (auto = CUDA when present)."),
    *,
    grid: GridOptions,
) -> None:
    """Train (or reuse) every listed model on one dataset: the dataset's paper table (HFF Table 2 or 3 layout)."""
    # start-up: numpy and yaml only for this command, not for --help
    from merbench import api

    report = api.compare(dataset, models, efficiency=efficiency, device=device, recipes=recipes, tuned=tuned,
                         **grid.api())
    finish(report, grid.format)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
