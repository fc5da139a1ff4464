"""merbench tune MODEL --dataset D --trials N [--space FILE] [--seeds-final K] [--sampler tpe|random] ..."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merbench.cli.common import err_console, user_errors
from merbench.cli.grid import GridOptions, grid_command


@user_errors
@grid_command(without=("seeds", "references"))
def tune(
    model: str = typer.Argument(..., help="A registered model name."),
    dataset: str = typer.Option(..., "--dataset", help="Dataset name: the recipe tuned is recipes/<dataset>/<model>.yaml."),
    trials: int = typer.Option(..., "--trials", help="The study's size: trials (complete, pruned or failed) in all; a rerun runs only the missing ones."),
    space: Optional[Path] = typer.Option(None, "--space", help="Search space file (default: recipes/spaces/<model>.yaml; format: docs/commands/tune.md)."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Tune this recipe file instead of recipes/<dataset>/<model>.yaml."),
    recipes: Optional[Path] = typer.Option(None, "--recipes", help="Folder of recipes laid out as <dataset>/<model>.yaml and spaces/<model>.yaml."),
    seeds_final: int = typer.Option(3, "--seeds-final", help="Seeds of the best recipe trained at the end, the only runs scored on test (0: none)."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe or random (Optuna's samplers)."),
    seed: int = typer.Option(0, "--seed", help="The sampler's seed: the same seed asks for the same trials."),
    pruner: str = typer.Option("median", "--pruner", help="median (stop a trial whose validation score falls below the median of earlier trials at the same epoch) or none."),
    prune_after: int = typer.Option(5, "--prune-after", help="Trials run to their end before the median pruner may stop one."),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL shared by the trials (default: sqlite file study.db in the tune folder; e.g. postgresql://host/db for many machines)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Minutes after which no new trial starts (those running finish)."),
    figure: Optional[Path] = typer.Option(None, "--figure", help="Where the optimisation history goes (.png, .pdf or .svg; default: history.png in the tune folder)."),
    *,
    grid: GridOptions,
) -> None:
    """Tune a model's settings on the validation split (Optuna), then train seeds of the best and table their test numbers."""
    # start-up: optuna, numpy and yaml only for this command, not for --help
    from merbench import api
    from merbench.tuning.tune import score

    report = api.tune(model, dataset, trials, space=space, recipe=recipe, recipes=recipes, seeds_final=seeds_final,
                      sampler=sampler, seed=seed, pruner=pruner, prune_after=prune_after, storage=storage,
                      timeout=timeout, figure=figure, **grid.api(seeds=False))
    if report.dry_run:
        typer.echo("dry run: nothing trained")
        return
    done = sum(t.state in ("complete", "pruned", "failed") for t in report.trials)
    err_console.print(f"tune {report.tune_dir}: {done} trials done ({len(report.trained)} run by this command), "
                      f"{len(report.errors)} failed to run (search {report.wall_seconds:.1f} s)", soft_wrap=True)
    if report.best is not None:
        err_console.print(f"best: trial {report.best.number}, validation {report.metric} {score(report.metric, report.best.value)}: "
                          f"{report.best_recipe}", soft_wrap=True)
    for note in report.notes:
        err_console.print(note, soft_wrap=True)
    for path in report.figures:
        err_console.print(f"figure: {path}", soft_wrap=True)
    if report.tables:
        typer.echo(report.render(grid.format))
    failed = False
    for number, error in report.errors.items():
        typer.echo(f"failed: trial {number}: {error}", err=True)
        failed = True
    if report.final is not None:
        for cell in report.final.failed:
            typer.echo(f"failed: {cell.describe()} ({cell.run}): {report.final.errors.get(cell.run)}", err=True)
            failed = True
    if failed:
        typer.echo(f"FAILED: run the command again to retry (trials resume from their checkpoints); "
                   f"merbench grid status {report.tune_dir}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)
