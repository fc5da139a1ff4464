"""merbench robustness RUN... [--modalities a,t,v] [--levels 0,0.25,0.5,1,2] [--metric wf1] [--figure PATH]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import console, err_console, user_errors


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
    # start-up: torch only for this command, not for --help
    from merbench.robustness import check_missing_mode, parse_levels, parse_modalities, plan_robustness, robustness_report

    if figure is not None:
        # start-up: numpy only for this command, not for --help
        from merbench.figures import figure_path

        figure_path(figure)
    wanted = parse_modalities(modalities) if modalities is not None else None
    check_missing_mode(missing_mode)
    plan = plan_robustness(runs, wanted, parse_levels(levels), metric)
    (console if dry_run else err_console).print(f"robustness: {plan.describe()}", soft_wrap=True)
    if dry_run:
        typer.echo("dry run: nothing scored")
        return
    report = robustness_report(plan, wanted, split=split, device=device, missing_mode=missing_mode, seed=seed)
    # start-up: sklearn and tabulate only for this command, not for --help
    from merbench.tables import render

    typer.echo(render(report.table(), format))
    if figure is not None:
        typer.echo(f"figure: {report.figure(figure)}", err=True)
    if save is not None:
        typer.echo(f"numbers: {report.save(save)}", err=True)


def register(app: typer.Typer) -> None:
    app.command("robustness")(robustness)
