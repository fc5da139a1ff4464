"""The merbench command line: one Typer app, one thin module per command."""

from __future__ import annotations

import typer

from merbench.cli.common import MerbenchGroup

app = typer.Typer(
    name="merbench",
    cls=MerbenchGroup,
    help="Reproduce, compare and stress-test multimodal emotion recognition models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _register() -> None:
    from merbench.cli import check, evaluate, extract, listing, recipes, table, train
    from merbench.cli import figure, robustness, significance
    from merbench.cli import ablate, compare, grid, heads_sweep

    for module in (extract, train, evaluate, table, check, listing, recipes, robustness, significance, figure,
                   ablate, heads_sweep, compare, grid):
        module.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
