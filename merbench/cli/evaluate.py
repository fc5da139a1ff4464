"""merbench evaluate RUN_DIR [--split test] [--missing M] [--noise M=LEVEL] [--missing-mode zero|mean]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import console, user_errors


@user_errors
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder written by merbench train."),
    split: str = typer.Option("test", "--split", help="train, valid or test."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    missing: Optional[List[str]] = typer.Option(None, "--missing", help="Score with this modality absent (repeatable): audio, text or vision."),
    noise: Optional[List[str]] = typer.Option(None, "--noise", help="Add Gaussian noise MODALITY=LEVEL, LEVEL x the training std per dimension (repeatable), e.g. vision=0.5."),
    missing_mode: str = typer.Option("zero", "--missing-mode", help="What an absent modality becomes: zero, or mean (the training mean)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the test-time noise."),
) -> None:
    """Reload the best checkpoint of a run and score it again on one split, optionally with a modality missing or noisy."""
    # start-up: torch only for this command, not for --help
    import json

    from merbench import api

    result = api.evaluate(run_dir, split=split, device=device, missing=list(missing or []), noise=list(noise or []),
                          missing_mode=missing_mode, seed=seed)
    if as_json:
        typer.echo(json.dumps(result.metrics, indent=2))
        return
    from tabulate import tabulate

    header = split if result.condition is None else f"{split} ({result.condition})"
    rows = [(k, f"{v:.4f}" if isinstance(v, float) else v) for k, v in result.metrics.items() if k != "confusion"]
    console.print(tabulate(rows, ["metric", header], tablefmt="simple"))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
