"""merbench significance RUN_A RUN_B [--metric wf1] [--resamples 10000] [--confidence 0.95] [--seed 0]"""

from __future__ import annotations

from pathlib import Path

import typer

from merbench.cli.common import console, user_errors


@user_errors
def significance(
    run_a: Path = typer.Argument(..., help="Run A: a run folder, or a folder of seeds of one recipe."),
    run_b: Path = typer.Argument(..., help="Run B, scored on the same utterances as A."),
    metric: str = typer.Option("wf1", "--metric", help="wf1, acc, macro_f1 or f1_<class>."),
    split: str = typer.Option("test", "--split", help="Which split's saved predictions to compare."),
    resamples: int = typer.Option(10_000, "--resamples", help="Bootstrap resamples and permutations."),
    confidence: float = typer.Option(0.95, "--confidence", help="Confidence level of the interval."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the resampling."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Paired bootstrap interval of B - A and a paired permutation p-value, on the same test utterances."""
    # start-up: numpy and yaml only for this command, not for --help
    import json

    from merbench import api

    result = api.significance(run_a, run_b, metric, split, resamples=resamples, confidence=confidence, seed=seed)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    from tabulate import tabulate

    pairs = ", ".join(f"{a}/{b}" for a, b in result.pairs)
    rows = [
        ("A", f"{result.a:.2f}"),
        ("B", f"{result.b:.2f}"),
        ("B - A", f"{result.difference:+.2f}"),
        (f"{100 * result.confidence:g}% interval (paired bootstrap)", f"[{result.low:+.2f}, {result.high:+.2f}]"),
        ("p (two-sided paired permutation)", f"{result.p_value:.4f}"),
        ("utterances", str(result.utterances)),
        ("seed pairs (A/B)", pairs),
        ("resamples", str(result.resamples)),
    ]
    console.print(tabulate(rows, [f"{metric} on {split}", ""], tablefmt="simple", disable_numparse=True))


def register(app: typer.Typer) -> None:
    app.command("significance")(significance)
