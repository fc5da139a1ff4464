"""merbench robustness RUN... [--modalities a,t,v] [--levels 0,0.25,0.5,1,2] [--metric wf1] [--figure PATH]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import load_registries, user_errors


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
    format: str = typer.Option("rich", "--format", help="rich, markdown, latex or csv."),
    figure: Optional[Path] = typer.Option(None, "--figure", help="Also write the curves as a PNG here."),
    save: Optional[Path] = typer.Option(None, "--save", help="Also write every number as JSON here."),
) -> None:
    """Score runs with each modality made noisy (per level) or missing: a table of the metric, and curves."""
    load_registries()
    from merbench.robustness import parse_levels, parse_modalities, robustness_report

    if figure is not None:
        from merbench.figures import png_path

        png_path(figure)
    wanted = parse_modalities(modalities) if modalities is not None else None
    report = robustness_report(runs, wanted, parse_levels(levels), metric, split, device, missing_mode, seed)
    from merbench.tables import render

    typer.echo(render(report.table(), format))
    if figure is not None:
        typer.echo(f"figure: {report.figure(figure)}", err=True)
    if save is not None:
        typer.echo(f"numbers: {report.save(save)}", err=True)


def register(app: typer.Typer) -> None:
    app.command("robustness")(robustness)
