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
    # start-up: sklearn only for this command, not for --help
    from tabulate import tabulate

    from merbench.aggregate import collect, group_results
    from merbench.check import build_reference, compare, load_reference, write_reference

    groups = group_results(collect(results))
    if update:
        reference = build_reference(groups, split, tolerance, metric)
        write_reference(against, reference)
        console.print(f"wrote {against}: {len(reference['entries'])} entries")
        return
    findings = compare(groups, load_reference(against))
    num = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    rows = [(f.entry, f.metric, num(f.reference), num(f.tolerance), num(f.got),
             "-" if f.got is None or f.reference is None else f"{f.got - f.reference:+.3f}", f.status)
            for f in findings]
    bad = [f for f in findings if f.status in ("regression", "missing")]
    shown = [r for r, f in zip(rows, findings) if f.status != "ok"] if bad else rows
    typer.echo(tabulate(shown, ["entry", "metric", "reference", "tolerance", "got", "change", "status"], disable_numparse=True))
    if bad:
        typer.echo(f"FAILED: {len(bad)} metric(s) regressed or missing against {against}", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {len(findings)} metric(s) within tolerance of {against}")


def register(app: typer.Typer) -> None:
    app.command("check")(check)
