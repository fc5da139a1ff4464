"""merbench robustness RUN... [--modalities a,t,v] [--levels 0,0.25,0.5,1,2] [--metric wf1] [--figure PATH]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import console, err_console, user_errors
from merbench.errors import MerbenchError
from merbench.tables import FORMATS


@user_errors
def robustness(
    runs: List[Path] = typer.Argument(..., help="Run folders, or folders of runs."),
    modalities: Optional[str] = typer.Option(None, "--modalities", help="Comma-separated modalities to perturb (default: every modality each run uses)."),
    levels: str = typer.Option("0,0.25,0.5,1,2", "--levels", help="Noise levels, multiples of the training std per dimension."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Metric to report (default: wf1; acc2_non0 for regression)."),
    split: str = typer.Option("test", "--split", help="train, valid or test."),
    missing_mode: str = typer.Option("zero", "--missing-mode", help="What an absent modality becomes: zero, or mean (the training mean)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the test-time noise."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    format: str = typer.Option("rich", "--format", help="rich, markdown, latex, csv or json."),
    figure: Optional[Path] = typer.Option(None, "--figure", help="Also write the curves here (PNG, PDF or SVG by the suffix)."),
    save: Optional[Path] = typer.Option(None, "--save", help="Also write every number as JSON here."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print how many runs and scorings the call makes, and score nothing."),
) -> None:
    """Score runs with each modality made noisy (per level) or missing: a table of the metric, and curves."""
    # start-up: numpy and yaml only for this command, not for --help
    from merbench import api

    if format not in FORMATS:  # before any scoring
        raise MerbenchError(f"--format {format}: expected one of {', '.join(FORMATS)}")
    found = api.robustness(runs, modalities=modalities, levels=levels, metric=metric, split=split,
                           missing_mode=missing_mode, seed=seed, device=device, figure=figure, save=save,
                           dry_run=dry_run, console=console if dry_run else err_console)
    if dry_run:
        typer.echo("dry run: nothing scored")
        return
    typer.echo(found.render(format))
    if found.figure is not None:
        typer.echo(f"figure: {found.figure}", err=True)
    if found.saved is not None:
        typer.echo(f"numbers: {found.saved}", err=True)


def register(app: typer.Typer) -> None:
    app.command("robustness")(robustness)
