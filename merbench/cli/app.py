"""The merbench command line: one Typer app, one thin module per command."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench import __version__
from merbench.cli import (
    ablate, check, compare, evaluate, extract, figure, finetune, grid, heads_sweep, listing, recipes, robustness,
    significance, table, train, tune,
)
from merbench.cli.common import MerbenchGroup
from merbench.plugins import use_plugins

app = typer.Typer(
    name="merbench",
    cls=MerbenchGroup,
    help="Reproduce, compare and stress-test multimodal emotion recognition models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"merbench {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print merbench's version and exit."),
    plugin: Optional[List[Path]] = typer.Option(
        None, "--plugin", metavar="FILE",
        help="A Python file that registers your own model (repeatable; before the command). "
             "Also: MERBENCH_PLUGINS, and entry points of the group merbench.models. See docs/plugins.md."),
) -> None:
    """Options of every command (they come before the command's name)."""
    if plugin:
        use_plugins(plugin)  # through the environment: grid workers load the same files


def _register() -> None:
    for module in (extract, finetune, train, evaluate, table, check, listing, recipes, robustness, significance, figure,
                   ablate, heads_sweep, compare, tune, grid):
        module.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
