"""merbench check RESULTS... --against REFERENCE.json [--update]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import console, user_errors


@user_errors
def check(
    results: List[Path] = typer.Argument(..., help="Run folders, result.json files, or folders of runs."),
    against: Path = typer.Option(..., "--against", help="Reference JSON written by --update."),
    update: bool = typer.Option(False, "--update", help="Rewrite the reference from these results instead of checking."),
    tolerance: float = typer.Option(1.5, "--tolerance", min=0, help="With --update: how far (points) a metric may fall."),
    metric: Optional[List[str]] = typer.Option(None, "--metric", help="With --update: metrics to guard (default acc, wf1 / acc2_has0, acc7, mae)."),
    split: str = typer.Option("test", "--split", help="With --update: which split's metrics to guard."),
) -> None:
    """Exit 1 and list every metric that fell below its reference by more than its tolerance."""
    # start-up: tabulate only for this command, not for --help
    from tabulate import tabulate

    # start-up: numpy and yaml only for this command, not for --help
    from merbench import api

    report = api.check(results, against, update=update, tolerance=tolerance, metrics=metric, split=split)
    if update:
        console.print(f"wrote {against}: {report.written} entries")
        return
    findings, bad = report.findings, report.failed
    num = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    # The change between the numbers as shown: both rounded first, so 30.059 beside 30.060 is
    # +0.001, never -0.000.
    change = lambda f: "-" if f.got is None or f.reference is None else f"{round(f.got, 3) - round(f.reference, 3):+.3f}"  # noqa: E731
    rows = [(f.entry, f.metric, num(f.reference), num(f.tolerance), num(f.got), change(f), f.status)
            for f in findings]
    shown = [r for r, f in zip(rows, findings) if f.status != "ok"] if bad else rows
    typer.echo(tabulate(shown, ["entry", "metric", "reference", "tolerance", "got", "change", "status"], disable_numparse=True))
    if bad:
        typer.echo(f"FAILED: {len(bad)} metric(s) regressed or missing against {against}", err=True)
        raise typer.Exit(1)
    checked = sum(f.status == "ok" for f in findings)
    new = sum(f.status == "new" for f in findings)
    extra = (f"; {new} new entr{'y' if new == 1 else 'ies'} not in the reference, not checked "
             f"(--update adds them)") if new else ""
    typer.echo(f"ok: {checked} metric(s) within tolerance of {against}{extra}")


def register(app: typer.Typer) -> None:
    app.command("check")(check)
