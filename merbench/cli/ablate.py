"""merbench ablate MODEL --drop COMPONENT [--drop ...] | --drop all --dataset D [--seeds 3] [--modalities S+T+V,T]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import user_errors
from merbench.cli.grid import GridOptions, finish, grid_command


@user_errors
@grid_command
def ablate(
    model: str = typer.Argument(..., help="Registered model with ablation components, e.g. hff."),
    drop: List[str] = typer.Option(..., "--drop", help="Component to switch off (repeatable or comma-separated); all = every component."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name: the base recipe is recipes/<dataset>/<model>.yaml."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Base recipe instead of recipes/<dataset>/<model>.yaml."),
    recipes: Optional[Path] = typer.Option(None, "--recipes", help="Folder of recipes laid out as <dataset>/<model>.yaml (default: ./recipes/<dataset>/<model>.yaml when present, else the packaged recipe)."),
    modalities: Optional[str] = typer.Option(None, "--modalities", help="Columns: modality subsets, e.g. S+T+V,T (S = speech = audio; default every subset of the recipe's modalities)."),
    *,
    grid: GridOptions,
) -> None:
    """Train the full model and each variant with a component switched off, on every modality subset: HFF Table 4."""
    # start-up: numpy and yaml only for this command, not for --help
    from merbench import api

    report = api.ablate(model, drop, dataset=dataset, recipe=recipe, recipes=recipes, modalities=modalities,
                        **grid.api())
    finish(report, grid.format)


def register(app: typer.Typer) -> None:
    app.command("ablate")(ablate)
