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
    """Print runs in the HFF paper's table layout, one table per dataset; runs that differ only by
    seed become mean ± std (n). A row whose model went without some of its components (a paper
    model on one modality) is marked ‡, with a note saying which."""
    # start-up: sklearn and tabulate only for this command, not for --help
    from merbench.aggregate import collect, group_results, row_labels
    from merbench.tables import FORMATS, by_dataset, layout_for, render_all, results_tables

    if format not in FORMATS:
        raise MerbenchError(f"--format {format}: expected one of {', '.join(FORMATS)}")
    groups = group_results(_with_components(collect(runs)))
    tables = results_tables(groups, layout, split)
    if figure is not None:
        # start-up: numpy only for this command, not for --help
        from merbench.figures import confusion_plot, group_confusions, figure_path

        figure_path(figure)
        panels = group_confusions(groups, row_labels(groups), split)  # errors before any output
    if significance:
        # start-up: sklearn only for this command, not for --help
        from merbench.significance import mark_not_significant

        for result, part in zip(tables, by_dataset(groups)):
            mark_not_significant(result, part, layout_for(part, layout), split, resamples=resamples)
    typer.echo(render_all(tables, format))
    if figure is not None:
        typer.echo(f"figure: {confusion_plot(panels, figure)}", err=True)


def _with_components(results: list[dict]) -> list[dict]:
    """Files written before result.json recorded ``model.inactive_components`` get it from
    today's model code (which imports torch: only for such files), so their rows are marked ‡
    when the model went without some of its components."""
    if all("inactive_components" in (r.get("model") or {}) for r in results):
        return results
    # start-up: torch only for this command, not for --help
    from merbench.models.build import fill_components

    return [fill_components(r) for r in results]


def register(app: typer.Typer) -> None:
    app.command("table")(table)
