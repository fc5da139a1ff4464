"""merbench evaluate RUN_DIR [--split test]"""

from __future__ import annotations

from pathlib import Path

import typer

from merbench.cli.common import console, load_registries, user_errors


@user_errors
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder written by merbench train."),
    split: str = typer.Option("test", "--split", help="train, valid or test."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Reload the best checkpoint of a run and score it again on one split."""
    load_registries()
    import json

    from merbench.rescore import rescore

    metrics = rescore(run_dir, split, device)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    from tabulate import tabulate

    rows = [(k, f"{v:.4f}" if isinstance(v, float) else v) for k, v in metrics.items() if k != "confusion"]
    console.print(tabulate(rows, ["metric", split], tablefmt="simple"))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
