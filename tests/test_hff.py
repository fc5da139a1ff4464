"""HFF (issue 10): the Bayesian uncertainty weighting learns which modality to trust, the
attention ablation removes only the attention sub-layers, switches that build nothing for a
modality subset are declared so, and ablate trains such cells once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from merbench.data.batching import split_tensors
from merbench.data.synthetic import synthetic
from merbench.errors import MerbenchError
from merbench.experiments import ablate
from merbench.models.build import build_model
from merbench.models.hff import HFF, INIT_LOG_VAR
from merbench.recipe import validate
from merbench.references import incomparable, run_features

PAPER_DIMS = {"audio": 128, "text": 768, "vision": 512}


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _train(model, tensors, epochs: int, lr: float) -> None:
    """CE plus the model's aux losses at weight 1, as merbench's loop adds them."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for epoch in range(epochs):
        model.train()
        for batch in tensors.batches(model.level, 4, torch.Generator().manual_seed(epoch)):
            out = model(batch)
            loss = torch.nn.functional.cross_entropy(batch.valid(out.logits), batch.labels[batch.utt_mask])
            loss = loss + sum(out.aux_loss.values())
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()


def test_uncertainty_weighting_down_weights_the_corrupted_modality():
    """On synthetic, each modality of an utterance is replaced by noise with probability
    ``corrupt``. After a short training, Eq. 19's weight of a modality on the test utterances
    where it was corrupted is lower than where it was clean, by at least MARGIN (the weights of
    the three modalities sum to 1; equal weighting gives 1/3 everywhere)."""
    margin = 0.05
    torch.manual_seed(0)
    corpus = synthetic(n_dialogues=40, n_utterances=600, corrupt=0.2, seed=0)
    model = build_model("hff_tiny", corpus.dims, len(corpus.label_names), audio_cnn=False)
    _train(model, split_tensors(corpus, "train", want_frames=True), epochs=15, lr=3e-3)

    test = corpus.split("test")
    batch = split_tensors(corpus, "test", want_frames=True).dialogue_batch(list(range(len(test))))
    weights = model.modality_weights(batch)[batch.utt_mask].numpy()  # (N, M)
    torch.testing.assert_close(weights.sum(-1), np.ones(len(weights), dtype=np.float32))
    for i, m in enumerate(model.modalities):
        corrupted = np.concatenate([d.corrupted[m] for d in test])  # (N,)
        assert 10 <= corrupted.sum() < len(corrupted) / 2, m
        clean_w, corrupted_w = weights[~corrupted, i].mean(), weights[corrupted, i].mean()
        assert clean_w - corrupted_w >= margin, f"{m}: clean {clean_w:.3f}, corrupted {corrupted_w:.3f}"


def test_uncertainty_losses_are_the_variational_terms(tiny_corpus):
    torch.manual_seed(0)
    model = build_model("hff_tiny", tiny_corpus.dims, len(tiny_corpus.label_names), audio_cnn=False)
    batch = next(split_tensors(tiny_corpus, "train", want_frames=True).batches("dialogue", 4))
    assert set(model.train()(batch).aux_loss) == {"kl", "modality_nll"}
    assert model.eval()(batch).aux_loss == {}  # aux losses are training-only
    # At the initial log-variance the Gaussians sit away from the prior: the KL is positive.
    assert model.train()(batch).aux_loss["kl"] > 0.5 * (np.exp(INIT_LOG_VAR) - 1 - INIT_LOG_VAR) - 1e-3


def test_attention_off_removes_only_the_attention_sublayers():
    torch.manual_seed(0)
    full = build_model("hff", PAPER_DIMS, 6, audio_cnn=False)
    ablated = build_model("hff", PAPER_DIMS, 6, audio_cnn=False, attention=False)
    per_layer = 4 * (128 * 128 + 128)  # Q, K, V and output projections of 8 heads x 16
    assert _count(full.attention) == 4 * per_layer
    assert _count(full) - _count(ablated) == 4 * per_layer
    # The encoder's feed-forward blocks and norms stay: 4 x (two LayerNorms + 128 -> 512 -> 128).
    per_rest = 2 * 2 * 128 + (128 * 512 + 512) + (512 * 128 + 128)
    assert _count(ablated.encoder) == _count(full.encoder) == 4 * per_rest


def test_pre_norm_is_an_option_with_one_closing_norm(tiny_corpus):
    post = build_model("hff_tiny", tiny_corpus.dims, 6, audio_cnn=False)
    pre = build_model("hff_tiny", tiny_corpus.dims, 6, audio_cnn=False, pre_norm=True)
    assert post.final_norm is None and _count(pre) - _count(post) == 2 * 16
    batch = next(split_tensors(tiny_corpus, "train", want_frames=True).batches("dialogue", 4))
    assert torch.isfinite(pre.eval()(batch).logits).all()


@pytest.mark.parametrize("pre_norm", [False, True])
def test_identity_init_starts_the_encoder_without_mixing_utterances(tiny_corpus, pre_norm):
    """``identity_init``: at initialisation the attention stack passes each utterance through on
    its own (up to its LayerNorms), so changing one utterance of a dialogue leaves the encoder's
    output for the others unchanged; the default initialisation mixes them. Training moves the
    zeroed output layers away from zero."""
    def encoded(model, batch):
        fusion = model._fuse(model._inputs(batch)[0])
        x = residual = fusion.f0
        for i, layer in enumerate(model.encoder):
            x = residual = layer(x, residual, batch.utt_mask, model.attention[i])
        return x

    batch = next(split_tensors(tiny_corpus, "train", want_frames=True).batches("dialogue", 2))
    changed = batch.features["text"].clone()
    changed[:, 1:] = changed[:, 1:] + 1.0  # every utterance but the first of each dialogue
    other = dataclasses.replace(batch, features={**batch.features, "text": changed})
    for identity, moves in ((True, False), (False, True)):
        torch.manual_seed(0)
        model = build_model("hff_tiny", {"text": tiny_corpus.dims["text"]}, 6, audio_cnn=False,
                            pre_norm=pre_norm, identity_init=identity).eval()
        first, first_other = encoded(model, batch)[:, 0], encoded(model, other)[:, 0]
        assert (not torch.allclose(first, first_other, atol=1e-6)) == moves
    assert model.attention[0].out.weight.abs().sum() > 0
    torch.manual_seed(0)
    model = build_model("hff_tiny", {"text": tiny_corpus.dims["text"]}, 6, audio_cnn=False, identity_init=True)
    assert model.attention[0].out.weight.abs().sum() == 0 and model.encoder[0].feed_forward[-1].weight.abs().sum() == 0
    _train(model, split_tensors(tiny_corpus, "train", want_frames=True), epochs=1, lr=1e-2)
    assert model.attention[0].out.weight.abs().sum() > 0 and model.encoder[0].feed_forward[-1].weight.abs().sum() > 0


@pytest.mark.parametrize("modality", ["audio", "text", "vision"])
def test_weighting_switches_build_nothing_with_one_modality(modality, tiny_corpus):
    view = tiny_corpus.select_modalities([modality])
    assert HFF.active_components([modality]) == ("attention", "temporal", "alignment")
    assert HFF.active_components(["audio", "text"]) == HFF.components
    batch = next(split_tensors(view, "train", want_frames=True).batches("dialogue", 4))
    outputs = []
    for off in ({}, {"dynamic_weighting": False}, {"uncertainty": False}):
        torch.manual_seed(0)
        model = build_model("hff_tiny", view.dims, 6, audio_cnn=False, **off).eval()
        assert model.dynamic_weighting is None and model.uncertainty is None
        outputs.append(model(batch).logits)
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])


def test_ablate_plans_a_switch_that_builds_nothing_as_the_full_models_cell():
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "synthetic" / "hff.yaml"
    plan = ablate.plan("hff", ["dynamic_weighting", "attention"], None, recipe, [], 1, "T,S+T")
    labels = [(c.labels["off"], c.labels["modalities"]) for c in plan.cells]
    assert labels == [("none", "T"), ("none", "S+T"), ("dynamic_weighting", "S+T"),
                      ("attention", "T"), ("attention", "S+T")]
    assert plan.info["same_as_full"] == [["dynamic_weighting", "T"]]


def test_a_paper_number_on_other_modalities_or_features_is_not_comparable():
    table = {"modalities": ["audio", "text", "vision"], "features": {"audio": "mfcc", "text": "bert", "vision": "resnet"}}
    text_only = validate({"dataset": {"name": "iemocap", "features": {"text": "minilm"}, "modalities": ["text"]},
                          "model": {"name": "hff"}}, "test")
    assert run_features(text_only) == {"text": "minilm"}
    assert "audio+text+vision, these runs text" in incomparable(table, ["text"], run_features(text_only))
    # The modality column of an ablation matches; the features still do not.
    assert incomparable(table, None, {"text": "minilm"}) == "the paper's features are text bert, these runs' text minilm"
    assert incomparable(table, ["text", "audio", "vision"],
                        {"audio": "mfcc", "text": "bert", "vision": {"name": "resnet"}["name"]}) is None
    assert "does not record" in incomparable({"rows": {}}, ["text"], {"text": "bert"})
    generated = {"dataset": {"name": "synthetic", "modalities": ["audio", "text"]}}
    assert run_features(generated) == {"audio": "synthetic's own", "text": "synthetic's own"}


def test_paper_objective_keeps_the_uncertainty_branch_and_returns_no_aux_loss(tiny_corpus):
    """``objective: paper`` (Eq. 31, the cross-entropy alone): the Gaussian heads of Eq. 19-20
    are built and used as with the default, only the variational losses (and the classifier
    that only ``modality_nll`` reads) are gone; the same weights give the same logits."""
    torch.manual_seed(0)
    default = build_model("hff_tiny", tiny_corpus.dims, 6, audio_cnn=False)
    paper = build_model("hff_tiny", tiny_corpus.dims, 6, audio_cnn=False, objective="paper")
    assert default.objective == "merbench" and paper.objective == "paper"
    assert paper.uncertainty is not None and paper.uncertainty.classifier is None
    classifier = {k for k in default.state_dict() if k.startswith("uncertainty.classifier.")}
    assert classifier == {"uncertainty.classifier.weight", "uncertainty.classifier.bias"}
    paper.load_state_dict({k: v for k, v in default.state_dict().items() if k not in classifier})  # strict

    batch = next(split_tensors(tiny_corpus, "train", want_frames=True).batches("dialogue", 4))
    assert torch.equal(paper.eval()(batch).logits, default.eval()(batch).logits)
    assert torch.equal(paper.modality_weights(batch), default.modality_weights(batch))
    assert set(default.train()(batch).aux_loss) == {"kl", "modality_nll"}
    out = paper.train()(batch)
    assert out.aux_loss == {}
    # The branch is in the forward pass: the cross-entropy alone reaches its log-variance heads.
    torch.nn.functional.cross_entropy(batch.valid(out.logits), batch.labels[batch.utt_mask]).backward()
    for m in paper.modalities:
        assert paper.uncertainty.log_var[m][-1].weight.grad.abs().sum() > 0, m
        assert paper.uncertainty.mean[m].weight.grad.abs().sum() > 0, m


def test_objective_is_a_validated_choice():
    recipe = lambda objective: {"dataset": {"name": "synthetic"},  # noqa: E731
                                "model": {"name": "hff_tiny", "objective": objective}}
    assert validate(recipe("paper"), "test")["model"]["objective"] == "paper"
    assert validate(recipe("merbench"), "test")["model"]["objective"] == "merbench"
    with pytest.raises(MerbenchError) as caught:
        validate(recipe("papr"), "test")
    assert "model.objective: expected one of merbench, paper, got 'papr' (did you mean 'paper'?)" in str(caught.value)
    with pytest.raises(MerbenchError, match="model.objective: expected str, got True"):
        validate(recipe(True), "test")
    with pytest.raises(ValueError, match="objective must be one of"):
        HFF({"text": 4, "audio": 3}, 6, objective="cross_entropy")
