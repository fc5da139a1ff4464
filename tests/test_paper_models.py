"""The three paper models: each ablation switch removes exactly its component, every remaining
parameter still learns, every modality subset runs with any switch off, padding never leaks
between dialogues, and HFF runs Table 5's head counts."""

from __future__ import annotations

import itertools

import pytest
import torch

from merbench.data.batching import split_tensors
from merbench.data.types import MODALITIES
from merbench.errors import MerbenchError
from merbench.models.build import build_model, model_class
from merbench.models.hff import HFF
from merbench.models.hrdf_mer import cross_modal_label_contrastive
from merbench.models.mcn_cl import hard_negative_contrastive

PAPER_MODELS = ["hff_tiny", "hrdf_mer_tiny", "mcn_cl_tiny"]
SUBSETS = [list(c) for r in (1, 2, 3) for c in itertools.combinations(MODALITIES, r)]
# Switches that change only a training loss: no module, same logits, a different aux loss.
LOSS_SWITCHES = {("hrdf_mer_tiny", "clc_loss"): "clc", ("mcn_cl_tiny", "contrastive"): "contrastive",
                 ("mcn_cl_tiny", "hard_negative"): "contrastive"}
SWITCHES = [(name, s) for name in PAPER_MODELS for s in model_class(name).components]


def _build(name, corpus, seed=0, **args):
    torch.manual_seed(seed)
    num_outputs = len(corpus.label_names)
    return build_model(name, corpus.dims, num_outputs, **args)


def _batch(model, corpus, size=None):
    tensors = split_tensors(corpus, "train", want_frames=type(model).inputs == "frames")
    return next(tensors.batches(model.level, size or (4 if model.level == "dialogue" else 16)))


def _logits(out, batch):
    return batch.valid(out.logits)  # (N, C)


def _params_without_gradient(model, batch) -> list[str]:
    """Parameters no gradient reaches; for HFF within two steps: a layer that starts at zero
    (``identity_init``) passes no gradient back at the first step, and does from the second."""
    model.train()
    for step in range(2):
        model.zero_grad()
        torch.manual_seed(1)
        out = model(batch)
        (_logits(out, batch).pow(2).mean() + sum(out.aux_loss.values())).backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        if not missing or not isinstance(model, HFF):
            return missing
        torch.optim.SGD(model.parameters(), lr=0.1).step()
    return missing


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_switch_has_a_title():
    for name in PAPER_MODELS:
        cls = model_class(name)
        assert set(cls.component_titles) == set(cls.components), name
        assert cls.title.endswith("(full model)")


@pytest.mark.parametrize("name, switch", SWITCHES, ids=lambda v: str(v))
def test_switch_removes_exactly_its_component(name, switch, tiny_corpus):
    full, ablated = _build(name, tiny_corpus), _build(name, tiny_corpus, **{switch: False})
    batch = _batch(full, tiny_corpus)
    full.eval(), ablated.eval()
    with torch.no_grad():
        full_logits, ablated_logits = _logits(full(batch), batch), _logits(ablated(batch), batch)
    if (name, switch) in LOSS_SWITCHES:
        key = LOSS_SWITCHES[name, switch]
        assert _count(full) == _count(ablated)
        assert torch.equal(full_logits, ablated_logits)
        full.train(), ablated.train()
        torch.manual_seed(2)
        with_loss = full(batch).aux_loss
        torch.manual_seed(2)
        without = ablated(batch).aux_loss
        assert key in with_loss
        if switch == "hard_negative":  # same loss term, negatives no longer mined
            assert not torch.allclose(with_loss[key], without[key])
        else:
            assert key not in without
    else:
        assert getattr(full, switch) is not None
        assert getattr(ablated, switch) is None  # never built, so never called
        assert any(n.startswith(f"{switch}.") for n, _ in full.named_parameters())
        assert not any(n.startswith(f"{switch}.") for n, _ in ablated.named_parameters())
        assert _count(ablated) < _count(full)
        assert not torch.allclose(full_logits, ablated_logits)
    assert not _params_without_gradient(ablated, batch)


@pytest.mark.parametrize("name", PAPER_MODELS)
@pytest.mark.parametrize("frames", [False, True], ids=["vectors", "frames"])
def test_full_model_trains_every_parameter(name, frames, tiny_corpus, tiny_frames_corpus):
    corpus = tiny_frames_corpus if frames else tiny_corpus
    model = _build(name, corpus)
    assert not _params_without_gradient(model, _batch(model, corpus))


@pytest.mark.parametrize("name, switch", SWITCHES, ids=lambda v: str(v))
@pytest.mark.parametrize("modalities", SUBSETS, ids=lambda s: "+".join(s))
def test_every_subset_runs_with_the_switch_off(name, switch, modalities, tiny_corpus):
    view = tiny_corpus.select_modalities(modalities)
    model = _build(name, view, **{switch: False})
    batch = _batch(model, view)
    out = model(batch)
    assert torch.isfinite(_logits(out, batch)).all()
    assert all(torch.isfinite(v) for v in out.aux_loss.values())
    assert not _params_without_gradient(model, batch)


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_no_leakage_across_dialogue_padding(name, tiny_corpus):
    """A dialogue's predictions are the same alone and batched beside longer dialogues."""
    model = _build(name, tiny_corpus).eval()
    tensors = split_tensors(tiny_corpus, "train", want_frames=type(model).inputs == "frames")
    lengths = [len(d) for d in tiny_corpus.split("train")]
    shortest = min(range(len(lengths)), key=lengths.__getitem__)
    together = tensors.dialogue_batch(list(range(len(lengths))))
    alone = tensors.dialogue_batch([shortest])
    assert together.utt_mask.shape[1] > lengths[shortest]  # the short one is padded
    with torch.no_grad():
        batched = model(together).logits[shortest, : lengths[shortest]]
        single = model(alone).logits[0]
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("heads", [4, 6, 8, 10])
def test_hff_runs_table5_head_counts(heads, tiny_corpus):
    model = _build("hff_tiny", tiny_corpus, heads=heads)
    batch = _batch(model, tiny_corpus)
    assert torch.isfinite(_logits(model(batch), batch)).all()
    layer = model.attention[0]
    assert layer.query.out_features == heads * layer.head_dim  # fixed width per head
    assert layer.out.out_features == model.projection["text"].out_features


def test_hff_rejects_zero_heads(tiny_corpus):
    with pytest.raises(MerbenchError, match="heads"):
        _build("hff_tiny", tiny_corpus, heads=0)


def test_hff_frames_axis_is_utterance_level(tiny_frames_corpus):
    model = _build("hff_tiny", tiny_frames_corpus, time_axis="frames")
    assert model.level == "utterance"
    batch = _batch(model, tiny_frames_corpus)
    assert model(batch).logits.shape == (16, len(tiny_frames_corpus.label_names))
    assert not _params_without_gradient(model, batch)
    with pytest.raises(MerbenchError, match="time_axis"):
        _build("hff_tiny", tiny_frames_corpus, time_axis="utterances")


def test_hff_samples_in_training_and_uses_the_mean_in_evaluation(tiny_corpus):
    model = _build("hff_tiny", tiny_corpus, dropout=0.0, classifier_dropout=0.0)
    batch = _batch(model, tiny_corpus)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(batch).logits, model(batch).logits)
        model.train()
        assert not torch.equal(model(batch).logits, model(batch).logits)  # Eq. 20's sample


def test_mcn_cl_vision_over_frames(tiny_frames_corpus):
    model = _build("mcn_cl_tiny", tiny_frames_corpus, vision_axis="frames")
    assert not _params_without_gradient(model, _batch(model, tiny_frames_corpus))


def test_hard_negative_mining_keeps_the_most_similar_negatives():
    torch.manual_seed(0)
    z, labels = torch.randn(12, 8), torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, -1])
    everything = hard_negative_contrastive(z, labels, 0.1, None)
    # k at least the number of negatives: mining keeps them all.
    torch.testing.assert_close(hard_negative_contrastive(z, labels, 0.1, 11), everything)
    # Fewer negatives in the denominator can only lower each term.
    assert hard_negative_contrastive(z, labels, 0.1, 2) < everything


def test_contrastive_losses_reward_label_clusters():
    torch.manual_seed(0)
    labels = torch.arange(4).repeat(5)  # (20,)
    centres = torch.eye(8)[labels] * 5
    clustered = centres + 0.1 * torch.randn(20, 8)
    scattered = torch.randn(20, 8)
    assert hard_negative_contrastive(clustered, labels, 0.1, 4) < hard_negative_contrastive(scattered, labels, 0.1, 4)
    aligned = {"audio": clustered, "text": centres + 0.1 * torch.randn(20, 8)}
    unaligned = {"audio": clustered, "text": torch.randn(20, 8)}
    assert cross_modal_label_contrastive(aligned, labels, 0.1) < cross_modal_label_contrastive(unaligned, labels, 0.1)
