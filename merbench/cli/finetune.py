"""merbench finetune --dataset D [--root PATH] [--text minilm|mpnet] [--text-model DIR] [--context K] [--epochs 3] [--seed 0] [--out models/] [--crossfit K] [--crossfit-eval full|mean]"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merbench.cli.common import Dataset, DatasetFormat, Fold, Labels, Protocol, command_line, console, user_errors


@user_errors
def finetune(
    dataset: Dataset,
    root: Optional[str] = typer.Option(None, "--root", help="Your copy (default $MERBENCH_<DATASET>_ROOT)."),
    format: DatasetFormat = None,
    labels: Labels = None,
    protocol: Protocol = None,
    fold: Fold = None,
    text: str = typer.Option("minilm", "--text", help="The encoder to start from: minilm (packaged, works offline) or mpnet (extra mpnet); --text-model DIR overrides it."),
    text_model: Optional[str] = typer.Option(None, "--text-model", help="The encoder to start from instead of --text: a local dir (save_pretrained) or a hub id org/name[@revision]."),
    context: int = typer.Option(0, "--context", help="Previous utterances of the dialogue (with speaker tags) read as the first segment."),
    epochs: int = typer.Option(3, "--epochs", help="Training epochs; the best one on the validation split is kept."),
    seed: int = typer.Option(0, "--seed", help="Seeds the head, dropout and batch order."),
    lr: float = typer.Option(5e-5, "--lr", help="AdamW learning rate (linear warm-up over 10% of steps, then decay)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Utterances per step."),
    max_length: int = typer.Option(128, "--max-length", help="Tokens per input, context included."),
    crossfit: int = typer.Option(0, "--crossfit", help="K >= 2: K encoders on K-1 folds of the training dialogues + one on all."),
    crossfit_eval: str = typer.Option("full", "--crossfit-eval", help="With --crossfit: full also fine-tunes the encoder on all training dialogues (what extraction's crossfit_eval full reads); mean skips it."),
    out: Path = typer.Option(Path("models"), "--out", help="Parent folder; the encoder's folder is named by its options and data."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: CUDA when present)."),
    threads: int = typer.Option(0, "--threads", help="torch CPU threads (0: torch's default)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Fine-tune a text encoder as an utterance classifier (regressor on MOSEI) on the training split."""
    # start-up: torch only for this command, not for --help
    from merbench import api

    done = api.finetune(dataset, root, format=format, labels=labels, protocol=protocol, fold=fold, text=text,
                        text_model=text_model, context=context, epochs=epochs, seed=seed, lr=lr,
                        batch_size=batch_size, max_length=max_length, crossfit=crossfit, crossfit_eval=crossfit_eval,
                        out=out, device=device, threads=threads, progress=not quiet, command=command_line(),
                        warn=lambda w: typer.echo(f"warning: {w}", err=True))
    console.print(f"fine-tuned encoder: {done.folder}")
    if done.kind == "encoder":
        console.print(f"  best epoch {done.best_epoch} (valid {done.selection_metric} "
                      f"{done.best_valid:.2f}), {done.seconds_per_epoch} s/epoch")
    console.print(f"extract: merbench extract --dataset {dataset} --root {root or '$MERBENCH_' + dataset.upper() + '_ROOT'} "
                  f"--text-model {done.folder}" + (" --crossfit-eval mean" if crossfit_eval == "mean" else ""))


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune)
