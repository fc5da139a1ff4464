"""merbench table RUN_DIR... [--format rich|markdown|latex|csv] [--layout iemocap|mosei]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import user_errors


@user_errors
def table(
    runs: List[Path] = typer.Argument(..., help="Run folders, result.json files, or folders of runs."),
    format: str = typer.Option("rich", "--format", help="rich, markdown, latex or csv."),
    layout: Optional[str] = typer.Option(None, "--layout", help="iemocap (HFF Table 3) or mosei (HFF Table 2); default from the dataset's task."),
    split: str = typer.Option("test", "--split", help="Which split's metrics to show."),
) -> None:
    """Print runs in the HFF paper's table layout; runs that differ only by seed become mean ± std (n)."""
    from merbench.aggregate import collect, group_results
    from merbench.tables import render, results_table

    typer.echo(render(results_table(group_results(collect(runs)), layout, split), format))


def register(app: typer.Typer) -> None:
    app.command("table")(table)
