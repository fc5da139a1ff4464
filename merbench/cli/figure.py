"""merbench figure confusion RUN [--split test] --out PATH"""

from __future__ import annotations

from pathlib import Path

import typer

from merbench.cli.common import console, user_errors

figure_app = typer.Typer(help="Draw figures (PNG, PDF or SVG) from results files.", no_args_is_help=True)


@figure_app.command("confusion")
@user_errors
def confusion(
    run: Path = typer.Argument(..., help="A run folder, its result.json, or a folder of seeds of one recipe."),
    out: Path = typer.Option(..., "--out", help="File to write; its suffix (.png, .pdf, .svg) sets the format."),
    split: str = typer.Option("test", "--split", help="Which split's confusion matrix."),
) -> None:
    """Row-normalised confusion matrix (HFF Fig. 5); the mean over seeds for a folder of seeds."""
    # start-up: numpy and yaml only for this command, not for --help
    from merbench import api

    console.print(f"figure: {api.confusion_figure(run, out, split=split)}")


def register(app: typer.Typer) -> None:
    app.add_typer(figure_app, name="figure")
