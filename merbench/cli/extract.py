"""merbench extract --dataset D --root PATH [--audio ...] [--text ...] [--vision ...] [--device cuda]"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import yaml

from merbench.cli.common import Dataset, DatasetFormat, Fold, Labels, Protocol, console, user_errors
from merbench.data.types import MODALITIES
from merbench.errors import MerbenchError
from merbench.recipe import load_yaml


@user_errors
def extract(
    dataset: Dataset,
    root: Path = typer.Option(..., "--root", help="Your copy: the release folder, or the pickle / CSV folder you have."),
    format: DatasetFormat = None,
    labels: Labels = None,
    protocol: Protocol = None,
    fold: Fold = None,
    audio: Optional[str] = typer.Option(None, "--audio", help="mfcc, opensmile, encoder (any transformers audio encoder, Whisper's included) or wav2vec2."),
    audio_model: Optional[str] = typer.Option(None, "--audio-model", help="The audio encoder (encoder, wav2vec2): a local dir (save_pretrained) or a hub id org/name[@revision]."),
    text: Optional[str] = typer.Option(None, "--text", help="minilm (works offline out of the box), mpnet (extra mpnet) or bert."),
    text_model: Optional[str] = typer.Option(None, "--text-model", help="The BERT-family model: a local dir (save_pretrained), a hub id org/name[@revision], or a folder `merbench finetune` wrote (its context is read from its record); alone it implies --text bert."),
    crossfit_eval: str = typer.Option("full", "--crossfit-eval", help="A cross-fitted --text-model: valid / test from its encoder on all training dialogues (full) or the mean of its K fold encoders (mean)."),
    vision: Optional[str] = typer.Option(None, "--vision", help="resnet."),
    vision_model: Optional[str] = typer.Option(None, "--vision-model", help="The ResNet: a local dir (save_pretrained) or a hub id org/name[@revision]."),
    frames: int = typer.Option(8, "--frames", min=1, help="Video frames sampled per utterance (resnet)."),
    face: bool = typer.Option(False, "--face", help="Crop the speaker's face in each frame before the vision encoder (extra face)."),
    option: list[str] = typer.Option([], "--option", help="An extractor option, MODALITY.KEY=VALUE (repeatable), e.g. audio.feature_set=ComParE_2016, audio.level=lld, audio.layer=6."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: CUDA when present)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Feature cache folder (default .merbench-cache or $MERBENCH_CACHE)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Read a dataset release and extract (or reuse cached) features for the named extractors."""
    # start-up: torch only for this command, not for --help
    from merbench import api

    done = api.extract(dataset, root, format=format, labels=labels, protocol=protocol, fold=fold, audio=audio,
                       audio_model=audio_model, text=text, text_model=text_model, crossfit_eval=crossfit_eval,
                       vision=vision, vision_model=vision_model, frames=frames, face=face,
                       options={f"{m}.{k}": v for m, k, v in map(_option, option)}, device=device, cache=cache,
                       progress=not quiet, warn=lambda w: typer.echo(f"warning: {w}", err=True))
    console.print(f"{dataset} ({done.format}, {done.protocol}): "
                  f"{', '.join(f'{k} {v}' for k, v in done.counts.items())} utterances")
    for m, info in done.features.items():
        what = info.source + (f" by {info.extractor} (config {info.config_hash[:12]})" if info.source == "extracted" else "")
        console.print(f"  {m}: {info.dim}-d {'frame sequences' if info.sequence else 'vectors'}, {what}")
        if info.counts.get("frames_without_face"):
            typer.echo(f"warning: {m}: {info.counts['frames_without_face']} of {info.counts['frames']} frames had "
                       f"no face (left out); {info.counts['utterances_without_face']} utterances had none in any "
                       f"frame (zero features)", err=True)
    n, seconds = done.utterances, done.seconds
    console.print(f"{n} utterances in {seconds:.1f} s ({n / max(seconds, 1e-9):.0f} utt/s, cached features are free)")
    features = ", ".join(f"{m}: {s['name'] if len(s) == 1 else yaml.safe_dump(s, default_flow_style=True, sort_keys=False, width=1 << 16).strip()}"
                         for m, s in done.extractors.items())
    console.print(f"recipe: dataset: {{name: {dataset}, root: {root}"
                  + (f", format: {format}" if format else "") + (f", features: {{{features}}}" if features else "") + "}")


def _option(text: str) -> tuple[str, str, object]:
    """``audio.layer=6`` -> ("audio", "layer", 6): the value read as YAML, as ``--set`` reads it."""
    where, equals, raw = text.partition("=")
    modality, dot, key = where.strip().partition(".")
    if not equals or not dot or modality not in MODALITIES or not key or "." in key:
        raise MerbenchError(f"--option {text}: expected MODALITY.KEY=VALUE with MODALITY one of "
                            f"{', '.join(MODALITIES)}, e.g. audio.feature_set=ComParE_2016")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:  # not YAML: the text itself, as --set takes it
        value = raw
    return modality, key, value


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
