"""merbench train RECIPE [--set k=v ...] [--out runs/] [--resume] [--force] [--device D]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import command_line, console, load_registries, user_errors


@user_errors
def train(
    recipe: Path = typer.Argument(..., help="Recipe YAML, e.g. recipes/synthetic/hff.yaml."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a recipe value: SECTION.KEY=VALUE (repeatable)."),
    out: Path = typer.Option(Path("runs"), "--out", help="Folder that receives the run folder."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Train again even if this recipe and seed already finished."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: the recipe's, auto = CUDA when present)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train one model on one dataset and write one run folder (result.json, metrics.csv, log, checkpoints)."""
    load_registries()
    from merbench.recipe import load_recipe
    from merbench.results import read_result
    from merbench.tables import render, results_table
    from merbench.aggregate import group_results
    from merbench.train import train as train_run

    overrides = list(set_ or []) + ([f"train.device={device}"] if device else [])
    resolved = load_recipe(recipe, overrides)
    from merbench import runs

    if runs.is_finished(out / runs.run_name(resolved)) and not force:
        console.print("this recipe, seed and code already finished: showing that run (--force trains again)")
    run_dir = train_run(resolved, out, resume=resume, force=force, progress=not quiet, command=command_line())
    result = read_result(run_dir)
    if result["status"] != "ok":
        console.print(f"[red]run failed[/red]: {result.get('error')} ({run_dir})")
        raise typer.Exit(1)
    typer.echo(render(results_table(group_results([result]))))
    console.print(f"run folder: {run_dir}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
