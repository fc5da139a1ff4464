"""merbench train RECIPE [--set k=v ...] [--out runs/] [--resume] [--force] [--device D] [--threads N] [--keep-last]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.text import Text

from merbench import run_folder
from merbench.cli.common import command_line, console, user_errors


@user_errors
def train(
    recipe: Path = typer.Argument(..., help="Recipe YAML, e.g. recipes/synthetic/hff.yaml."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a recipe value: SECTION.KEY=VALUE (repeatable)."),
    out: Path = typer.Option(Path("runs"), "--out", help="Folder that receives the run folder."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Train again even if this recipe and seed already finished; the old run is replaced only when the new one finishes ok."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: the recipe's, auto = CUDA when present)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch CPU threads (default: the recipe's train.threads); part of the run's identity, as in the grid commands."),
    keep_last: bool = typer.Option(False, "--keep-last", help="Keep checkpoints/last.pt after the run ends (deleted by default; best.pt is always kept)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train one model on one dataset and write one run folder (result.json, metrics.csv, log, checkpoints)."""
    # start-up: torch and tabulate only for this command, not for --help
    from merbench import api
    from merbench.aggregate import group_results
    from merbench.recipe import override_pairs
    from merbench.tables import render, results_table

    overrides = (list(set_ or []) + ([f"train.device={device}"] if device else [])
                 + ([f"train.threads={threads}"] if threads is not None else []))
    run = api.train(recipe, out=out, resume=resume, force=force, progress=not quiet, command=command_line(),
                    keep_last=keep_last, console=console, **override_pairs(overrides))
    if not run.ok:
        planned = out / run_folder.run_name(run.recipe.data)  # a failed --force retrain left the finished run there
        kept = f"; the finished run in {planned} is kept" if run.path != planned and run_folder.is_finished(planned) else ""
        console.print(Text.assemble(("run failed", "red"), f": {run.error} ({run.path}){kept}"), soft_wrap=True)
        raise typer.Exit(1)
    typer.echo(render(results_table(group_results([run.result]))))
    console.print(f"run folder: {run.path}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
