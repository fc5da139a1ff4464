"""Checks every registered model gets for free: parametrised over the registry's tiny variants."""

from __future__ import annotations

import itertools

import pytest
import torch

from merbench.data.batching import split_tensors
from merbench.data.types import MODALITIES
from merbench.models.build import build_model, model_class
from merbench.models.hff import HFF
from merbench.registry import MODELS

TINY = [e.name for e in MODELS.entries() if e.meta.get("tiny")]
SUBSETS = [list(c) for r in (1, 2, 3) for c in itertools.combinations(MODALITIES, r)]


def test_every_model_has_a_tiny_variant():
    families = {model_class(e.name) for e in MODELS.entries()}
    tiny_families = {model_class(n) for n in TINY}
    assert families == tiny_families


def _batch(model, corpus, split="train"):
    tensors = split_tensors(corpus, split, want_frames=model_class_inputs(model) == "frames")
    return next(tensors.batches(model.level, 4 if model.level == "dialogue" else 16))


def model_class_inputs(model):
    return type(model).inputs


def _forward(name, corpus, modalities, seed=0, task="classification"):
    torch.manual_seed(seed)
    view = corpus.select_modalities(modalities)
    model = build_model(name, view.dims, 1 if task == "regression" else 6)
    batch = _batch(model, view)
    return model, batch, model(batch)


def _check_output(model, batch, out, outputs=6):
    logits = out.logits
    if model.level == "dialogue":
        assert logits.shape[:2] == batch.utt_mask.shape
        logits = logits[batch.utt_mask]
    else:
        assert logits.shape[0] == batch.labels.shape[0]
    assert logits.shape[-1] == outputs
    assert torch.isfinite(logits).all()
    for name, value in out.aux_loss.items():
        assert value.dim() == 0 and torch.isfinite(value), name


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("frames", [False, True], ids=["vectors", "frames"])
def test_shape_no_nan_and_gradients(name, frames, tiny_corpus, tiny_frames_corpus):
    corpus = tiny_frames_corpus if frames else tiny_corpus
    model, batch, out = _forward(name, corpus, list(MODALITIES))
    _check_output(model, batch, out)

    def backward(out):
        model.zero_grad()
        logits = batch.valid(out.logits) if model.level == "dialogue" else out.logits
        (logits.pow(2).mean() + sum(out.aux_loss.values())).backward()
        return [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]

    missing = backward(out)
    if missing and isinstance(model, HFF):
        # identity_init starts each encoder sub-layer's output layer at zero: at the first
        # step only those layers get a gradient, and the layers before them from the second on.
        torch.optim.SGD(model.parameters(), lr=0.1).step()
        missing = backward(model(batch))
    if not frames and model_class_inputs(model) == "frames":
        # A one-frame sequence read from the authors' zero state cannot reach the weights
        # that act on the previous state (recurrent weights, MFN's retain gate): those are
        # checked on real sequences (the "frames" case).
        missing = [n for n in missing if "weight_hh" not in n and "retain_gate" not in n]
    assert not missing, f"no gradient reaches {missing}"


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("modalities", SUBSETS, ids=lambda s: "+".join(s))
def test_every_modality_subset(name, modalities, tiny_corpus):
    model, batch, out = _forward(name, tiny_corpus, modalities)
    _check_output(model, batch, out)


@pytest.mark.parametrize("name", TINY)
def test_regression_output(name, tiny_corpus):
    model, batch, out = _forward(name, tiny_corpus, list(MODALITIES), task="regression")
    _check_output(model, batch, out, outputs=1)


@pytest.mark.parametrize("name", TINY)
def test_same_seed_same_output(name, tiny_corpus):
    outs = []
    for _ in range(2):
        model, batch, _ = _forward(name, tiny_corpus, list(MODALITIES), seed=3)
        model.eval()
        with torch.no_grad():
            outs.append(model(batch).logits)
    assert torch.equal(outs[0], outs[1])
