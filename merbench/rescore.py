"""Re-score a finished run: rebuild its data and model from the run folder, load best.pt."""

from __future__ import annotations

from pathlib import Path

import torch

from merbench import runs
from merbench.data.batching import split_tensors
from merbench.errors import MerbenchError
from merbench.evaluate import load_checkpoint, predict, score
from merbench.models.build import build_model, model_class
from merbench.recipe import SPLITS, validate
from merbench.results import read_result
from merbench.train import load_corpus, resolve_device


def load_run(run_dir: Path, device: str = "cpu"):
    """(recipe, corpus, model on device) of a finished run, from its own files."""
    run_dir = Path(run_dir)
    result = read_result(run_dir)
    if result["status"] != "ok":
        raise MerbenchError(f"{run_dir}: the run failed ({result.get('error')}); nothing to evaluate")
    recipe = validate(result["recipe"], f"{run_dir / runs.RESULT}: recipe")
    corpus = load_corpus(recipe)
    fingerprint = result["dataset"]["fingerprint"]
    if corpus.fingerprint() != fingerprint:
        raise MerbenchError(f"{run_dir}: the data now read differs from the data it was trained on "
                            f"(fingerprint {corpus.fingerprint()[:12]} != {fingerprint[:12]})")
    args = {k: v for k, v in recipe["model"].items() if k != "name"}
    num_outputs = 1 if corpus.task == "regression" else len(corpus.label_names)
    model = build_model(recipe["model"]["name"], corpus.dims, num_outputs, **args)
    state = load_checkpoint(run_dir / runs.BEST)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as e:
        raise MerbenchError(f"{run_dir / runs.BEST}: does not match model {recipe['model']['name']!r} "
                            f"({str(e).splitlines()[0][:120]})") from None
    dev = resolve_device(device)
    return recipe, corpus, model.to(dev), dev


def rescore(run_dir: Path, split: str = "test", device: str = "cpu", transform=None) -> dict:
    if split not in SPLITS:
        raise MerbenchError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    recipe, corpus, model, dev = load_run(run_dir, device)
    if split not in corpus.split_names():
        raise MerbenchError(f"--split {split}: dataset {corpus.name!r} has no such split")
    tensors = split_tensors(corpus, split, model_class(recipe["model"]["name"]).inputs == "frames")
    torch.manual_seed(0)
    return score(corpus, predict(model, tensors, dev, transform))
