"""Model-specific checks for the utterance-level baselines LMF, MFN, MFM and ICCN."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from merbench.data.batching import split_tensors
from merbench.models.build import build_model
from merbench.models.iccn import canonical_correlation
from merbench.models.lmf import LMF

DIMS = {"audio": 6, "text": 8, "vision": 5}


def _utterance_batch(corpus, frames, size=16):
    return next(split_tensors(corpus, "train", want_frames=frames).batches("utterance", size))


# --- LMF ---------------------------------------------------------------------------------


def test_lmf_rank_adds_the_factor_parameters_the_formula_predicts():
    hidden = {"audio": 8, "text": 64, "vision": 4}
    counts = {}
    for rank in (1, 4, 16):
        model = LMF(DIMS, 6, rank=rank, audio_hidden=8, text_hidden=64, vision_hidden=4)
        counts[rank] = sum(p.numel() for p in model.parameters())
    # Each rank adds one (H_m + 1) x C factor slice per modality and one fusion weight.
    per_rank = sum(h + 1 for h in hidden.values()) * 6 + 1
    assert counts[4] - counts[1] == 3 * per_rank
    assert counts[16] - counts[4] == 12 * per_rank


def test_lmf_equals_tensor_fusion_with_the_rank_r_weight_tensor(tiny_corpus):
    torch.manual_seed(0)
    model = LMF(tiny_corpus.dims, 3, rank=3, audio_hidden=4, text_hidden=5, vision_hidden=3).eval()
    batch = _utterance_batch(tiny_corpus, frames=False)
    with torch.no_grad():
        z = {m: torch.cat([torch.ones(len(batch.labels), 1), model.subnets[m](batch.features[m])], -1)
             for m in model.modalities}
        # The full TFN tensor Z = z_a o z_t o z_v and the weight W = sum_r w_r W_a^r o W_t^r o W_v^r.
        tensor = torch.einsum("bi,bj,bk->bijk", z["audio"], z["text"], z["vision"])
        f = model.factors
        weight = torch.einsum("r,ric,rjc,rkc->ijkc", model.fusion_weights[0], f["audio"], f["text"], f["vision"])
        expected = torch.einsum("bijk,ijkc->bc", tensor, weight) + model.fusion_bias
        assert torch.allclose(model(batch).logits, expected, atol=1e-5)


def test_lmf_trains_on_a_batch_of_one(tiny_corpus):
    model = build_model("lmf", tiny_corpus.dims, 6).train()
    batch = next(split_tensors(tiny_corpus, "train", want_frames=False).batches("utterance", 1))
    assert torch.isfinite(model(batch).logits).all()


# --- MFN ---------------------------------------------------------------------------------


def _pad(batch, extra):
    """The same batch with ``extra`` more frames per modality: garbage values, mask False."""
    feats, masks = {}, {}
    for m, x in batch.features.items():
        junk = torch.randn(x.shape[0], extra, x.shape[2]) * 100
        feats[m] = torch.cat([x, junk], dim=1)
        masks[m] = torch.cat([batch.masks[m], torch.zeros(x.shape[0], extra, dtype=torch.bool)], dim=1)
    return dataclasses.replace(batch, features=feats, masks=masks)


def test_mfn_ignores_padded_frames(tiny_frames_corpus):
    torch.manual_seed(0)
    model = build_model("mfn_tiny", tiny_frames_corpus.dims, 6).eval()
    batch = _utterance_batch(tiny_frames_corpus, frames=True)
    with torch.no_grad():
        plain = model(batch).logits
        padded = model(_pad(batch, 7)).logits
    assert torch.allclose(plain, padded, atol=1e-6)


def test_mfn_utterance_alone_equals_utterance_in_a_padded_batch(tiny_frames_corpus):
    torch.manual_seed(0)
    model = build_model("mfn_tiny", tiny_frames_corpus.dims, 6).eval()
    tensors = split_tensors(tiny_frames_corpus, "train", want_frames=True)
    lengths = tensors.masks["audio"].sum(1)
    short = int(lengths.argmin())
    alone = tensors.utterance_batch(torch.tensor([short]))
    mixed = tensors.utterance_batch(torch.tensor([short, int(lengths.argmax())]))
    assert mixed.features["audio"].shape[1] > alone.features["audio"].shape[1]  # really padded
    with torch.no_grad():
        assert torch.allclose(model(alone).logits[0], model(mixed).logits[0], atol=1e-5)


def test_mfn_reads_every_valid_frame(tiny_frames_corpus):
    torch.manual_seed(0)
    model = build_model("mfn_tiny", tiny_frames_corpus.dims, 6).eval()
    batch = _utterance_batch(tiny_frames_corpus, frames=True)
    with torch.no_grad():
        before = model(batch).logits
        for m in batch.features:
            changed = {k: v.clone() for k, v in batch.features.items()}
            last = batch.masks[m].sum(1) - 1  # each utterance's last valid frame
            changed[m][torch.arange(len(last)), last] += 1.0
            after = model(dataclasses.replace(batch, features=changed)).logits
            assert (after - before).abs().sum(-1).min() > 0, m


def test_mfn_runs_on_one_frame_sequences_from_vectors(tiny_corpus):
    model = build_model("mfn", tiny_corpus.dims, 6)
    batch = _utterance_batch(tiny_corpus, frames=True)
    assert batch.features["text"].shape[1] == 1
    assert torch.isfinite(model(batch).logits).all()


# --- MFM ---------------------------------------------------------------------------------


def test_mfm_aux_losses_only_in_training(tiny_corpus):
    model = build_model("mfm_tiny", tiny_corpus.dims, 6)
    batch = _utterance_batch(tiny_corpus, frames=False)
    assert set(model.train()(batch).aux_loss) == {"reconstruction", "mmd"}
    assert model.eval()(batch).aux_loss == {}


def test_mfm_reconstruction_loss_falls_on_a_fixed_batch(tiny_corpus):
    torch.manual_seed(0)
    model = build_model("mfm", tiny_corpus.dims, 6, dropout=0.0).train()
    batch = _utterance_batch(tiny_corpus, frames=False, size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = model(batch).aux_loss["reconstruction"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# --- ICCN --------------------------------------------------------------------------------


def test_canonical_correlation_of_a_linear_map_is_one_and_of_noise_is_small():
    torch.manual_seed(0)
    x = torch.randn(500, 4)
    y = x @ torch.randn(4, 4) + 0.01 * torch.randn(500, 4)
    assert canonical_correlation(x, y).item() > 0.99
    assert canonical_correlation(x, torch.randn(500, 4)).item() < 0.15


def test_iccn_cca_loss_is_finite_and_correlation_rises_when_optimised(tiny_corpus):
    torch.manual_seed(0)
    model = build_model("iccn", tiny_corpus.dims, 6, dropout=0.0).train()
    batch = _utterance_batch(tiny_corpus, frames=False, size=28)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        loss = model(batch).aux_loss["cca"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert -1.0 <= losses[-1] < losses[0] - 0.05


@pytest.mark.parametrize("modalities, anchor, cca", [
    (["audio", "text", "vision"], "text", True),
    (["audio", "text"], "text", True),
    (["audio", "vision"], "audio", True),
    (["vision"], "vision", False),
])
def test_iccn_anchor_and_cca_fallback(tiny_corpus, modalities, anchor, cca):
    view = tiny_corpus.select_modalities(modalities)
    model = build_model("iccn_tiny", view.dims, 6).train()
    assert model.anchor == anchor
    assert len(model.views) == len(modalities) - 1
    out = model(_utterance_batch(view, frames=False))
    assert ("cca" in out.aux_loss) == cca
