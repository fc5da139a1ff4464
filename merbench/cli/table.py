"""merbench table RUN_DIR... [--format rich|markdown|latex|csv|json] [--layout iemocap|mosei] [--significance] [--figure PATH]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import user_errors
from merbench.errors import MerbenchError


@user_errors
def table(
    runs: List[Path] = typer.Argument(..., help="Run folders, result.json files, or folders of runs."),
    format: str = typer.Option("rich", "--format", help="rich, markdown, latex, csv or json."),
    layout: Optional[str] = typer.Option(None, "--layout", help="iemocap (HFF Table 3) or mosei (HFF Table 2); default from the dataset's task."),
    split: str = typer.Option("test", "--split", help="Which split's metrics to show."),
    significance: bool = typer.Option(False, "--significance", help="Mark with † the cells not significantly different from their column's best (paired permutation test, p >= 0.05)."),
    resamples: int = typer.Option(10_000, "--resamples", min=1, help="Permutations per comparison for --significance."),
    figure: Optional[Path] = typer.Option(None, "--figure", help="Also write each row's row-normalised confusion matrix (mean over seeds) as one figure (PNG, PDF or SVG by the suffix)."),
) -> None:
    """Print runs in the HFF paper's table layouts, one table per dataset and data.

    Runs that differ only by seed become one row, mean ± std (n). A row whose model went without
    some of its components (a paper model on one modality) is marked ‡, with a note saying which."""
    # start-up: numpy and yaml only for this command, not for --help
    from merbench import api
    from merbench.tables import FORMATS

    if format not in FORMATS:  # before the runs are read and the tables built
        raise MerbenchError(f"--format {format}: expected one of {', '.join(FORMATS)}")
    report = api.table(runs, layout=layout, split=split, significance=significance, resamples=resamples,
                       figure=figure)
    typer.echo(report.render(format))
    if report.figure is not None:
        typer.echo(f"figure: {report.figure}", err=True)


def register(app: typer.Typer) -> None:
    app.command("table")(table)
