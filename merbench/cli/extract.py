"""merbench extract --dataset D --root PATH [--audio ...] [--text ...] [--vision ...] [--device cuda]"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merbench.cli.common import Dataset, DatasetFormat, Fold, Labels, Protocol, console, user_errors
from merbench.errors import MerbenchError


@user_errors
def extract(
    dataset: Dataset,
    root: Path = typer.Option(..., "--root", help="Your copy: the release folder, or the pickle / CSV folder you have."),
    format: DatasetFormat = None,
    labels: Labels = None,
    protocol: Protocol = None,
    fold: Fold = None,
    audio: Optional[str] = typer.Option(None, "--audio", help="mfcc or wav2vec2 (also HuBERT / WavLM dirs)."),
    audio_model: Optional[str] = typer.Option(None, "--audio-model", help="Local dir of the SSL audio model (save_pretrained)."),
    text: Optional[str] = typer.Option(None, "--text", help="minilm (works offline out of the box), mpnet (extra mpnet) or bert."),
    text_model: Optional[str] = typer.Option(None, "--text-model", help="Local dir of the BERT-family model (save_pretrained), or a folder `merbench finetune` wrote (its context is read from its record); alone it implies --text bert."),
    crossfit_eval: str = typer.Option("full", "--crossfit-eval", help="A cross-fitted --text-model: valid / test from its encoder on all training dialogues (full) or the mean of its K fold encoders (mean)."),
    vision: Optional[str] = typer.Option(None, "--vision", help="resnet."),
    vision_model: Optional[str] = typer.Option(None, "--vision-model", help="Local dir of the ResNet (save_pretrained)."),
    frames: int = typer.Option(8, "--frames", min=1, help="Video frames sampled per utterance (resnet)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: CUDA when present)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Feature cache folder (default .merbench-cache or $MERBENCH_CACHE)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Read a dataset release and extract (or reuse cached) features for the named extractors."""
    # start-up: torch only for this command, not for --help
    import time

    from merbench.data.readers import read_corpus
    from merbench.features.build import build_corpus

    if text_model and not text:
        text = "bert"  # any encoder dir, a fine-tuned one included; its record fixes the input
    specs: dict = {}
    text_extra = {} if crossfit_eval == "full" else {"crossfit_eval": crossfit_eval}  # the extractor checks it
    for modality, name, model, extra in (("audio", audio, audio_model, {}), ("text", text, text_model, text_extra),
                                         ("vision", vision, vision_model, {"frames": frames})):
        if name:
            specs[modality] = {"name": name, **({"model": model} if model else {}), **extra}
        elif model:
            raise MerbenchError(f"--{modality}-model given without --{modality}")
    raw = read_corpus(dataset, root, format, labels, protocol, fold, modalities=tuple(specs))
    for warning in raw.info.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    started = time.perf_counter()
    corpus = build_corpus(raw, specs, cache_root=cache, device=device, progress=not quiet)
    seconds = time.perf_counter() - started
    n = sum(len(d) for d in corpus.dialogues)
    console.print(f"{dataset} ({raw.info.get('format', format)}, {raw.protocol}): "
                  f"{', '.join(f'{k} {v}' for k, v in corpus.counts().items())} utterances")
    for m, info in corpus.info["features"].items():
        what = f"{info['source']}" + (f" by {info['extractor']} (config {info['config_hash'][:12]})" if info["source"] == "extracted" else "")
        console.print(f"  {m}: {info['dim']}-d {'frame sequences' if info['sequence'] else 'vectors'}, {what}")
    console.print(f"{n} utterances in {seconds:.1f} s ({n / max(seconds, 1e-9):.0f} utt/s, cached features are free)")
    features = ", ".join(f"{m}: {s['name']}" for m, s in specs.items())
    console.print(f"recipe: dataset: {{name: {dataset}, root: {root}"
                  + (f", format: {format}" if format else "") + (f", features: {{{features}}}" if features else "") + "}")


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
