"""Model-specific checks for the utterance-level baselines TFN, LMF, MFN, MFM and ICCN."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from merbench.data.batching import split_tensors
from merbench.models.build import build_model
from merbench.models._blocks import WideDropout
from merbench.models.iccn import canonical_correlation
from merbench.models.lmf import LMF
from merbench.models.mfm import MFM
from merbench.models.mfn import MFN, MFNEncoder
from merbench.models.tfn import TFN

DIMS = {"audio": 6, "text": 8, "vision": 5}


def _utterance_batch(corpus, frames, size=16):
    return next(split_tensors(corpus, "train", want_frames=frames).batches("utterance", size))


# --- parameter counts: the authors' layer shapes, written out -----------------------------
# Each count below is the number of parameters MMSA's class (src/MMSA/models/singleTask/*.py)
# builds for the same sizes, computed layer by layer from the authors' shapes.


def _linear(i, o):
    return i * o + o


def _lstm(i, h):  # nn.LSTM / nn.LSTMCell: weight_ih, weight_hh, bias_ih, bias_hh
    return 4 * h * (i + h) + 8 * h


def _subnet(d, h):  # BatchNorm1d(d), three linear layers
    return 2 * d + _linear(d, h) + 2 * _linear(h, h)


def _mfn_encoder(dims, h, mem, att, prop, g1, g2):
    total = sum(h[m] for m in dims)
    w = 2 * total
    return (sum(_lstm(dims[m], h[m]) for m in dims) + _linear(w, att) + _linear(att, w)
            + _linear(w, prop) + _linear(prop, mem) + _linear(w + mem, g1) + _linear(g1, mem)
            + _linear(w + mem, g2) + _linear(g2, mem))


def _count(model):
    return sum(p.numel() for p in model.parameters())


MOSEI = {"audio": 74, "text": 300, "vision": 35}


def test_tfn_parameter_count_is_the_authors_formula():
    model = TFN(MOSEI, 1, audio_hidden=16, vision_hidden=128, text_hidden=128, text_out=128, post_fusion=16)
    expected = (_subnet(74, 16) + _subnet(35, 128) + _lstm(300, 128) + _linear(128, 128)
                + _linear(17 * 129 * 129, 16) + _linear(16, 16) + _linear(16, 1))
    assert _count(model) == expected


def test_lmf_parameter_count_is_the_authors_formula():
    for rank, c in ((1, 1), (4, 1), (4, 6)):
        model = LMF(MOSEI, c, rank=rank, audio_hidden=16, text_hidden=128, vision_hidden=128)
        expected = (_subnet(74, 16) + _subnet(35, 128) + _lstm(300, 128) + _linear(128, 64)
                    + rank * (17 + 65 + 129) * c + rank + c)
        assert _count(model) == expected


def test_mfn_parameter_count_is_the_authors_formula():
    h = {"audio": 32, "text": 128, "vision": 128}
    model = MFN(MOSEI, 1)  # defaults: MMSA's MOSEI configuration
    expected = _mfn_encoder(MOSEI, h, 128, 128, 128, 256, 256) + _linear(288 + 128, 128) + _linear(128, 1)
    assert _count(model) == expected


def test_mfm_parameter_count_is_the_authors_formula_less_the_unused_mfn_output():
    h = {"audio": 32, "text": 256, "vision": 256}
    z = {"audio": 80, "text": 256, "vision": 80}
    f = {"audio": 80, "text": 32, "vision": 32}
    model = MFM(MOSEI, 1)  # defaults: MMSA's MOSEI configuration
    expected = (_mfn_encoder(MOSEI, h, 64, 1278, 32, 64, 128) + _linear(544 + 64, 32)
                + _linear(32, 16) + _linear(16, 16) + _linear(16, 16) + _linear(16, 1)
                + sum(_lstm(MOSEI[m], z[m]) + _linear(z[m], z[m]) + _linear(z[m], f[m]) + _linear(f[m], f[m])
                      + _lstm(16 + f[m], 16 + f[m]) + _linear(16 + f[m], MOSEI[m]) for m in MOSEI))
    assert _count(model) == expected


# --- TFN ---------------------------------------------------------------------------------


def test_tfn_structure_is_the_authors():
    model = TFN(MOSEI, 1, audio_dropout=0.1, vision_dropout=0.2, post_fusion_dropout=0.3)
    for m, p in (("audio", 0.1), ("vision", 0.2)):
        subnet = model.subnets[m]
        # BatchNorm on the input, then dropout, then three ReLU layers.
        assert isinstance(subnet.norm, nn.BatchNorm1d) and subnet.drop.p == p
        assert [type(x) for x in subnet.layers] == [nn.Linear, nn.ReLU] * 3
    assert isinstance(model.subnets["text"].rnn, nn.LSTM)
    assert not any(isinstance(x, nn.Dropout) for x in model.subnets["text"].modules())
    # Post fusion: dropout on the fused tensor only, then linear-ReLU, linear-ReLU, linear.
    assert [type(x) for x in model.post] == [WideDropout, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert model.post[0].p == 0.3


def test_wide_dropout_is_dropout():
    """TFN's fused-tensor dropout: each element kept with probability 1 - p and scaled by
    1 / (1 - p), the gradient through the same mask, the identity in evaluation."""
    torch.manual_seed(0)
    drop = WideDropout(0.4)
    x = torch.ones(200, 5000, requires_grad=True)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.6) < 0.005  # 1e6 draws: std 0.0005
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.6))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(sum y)/dx = mask / (1 - p) = y for x = 1
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(WideDropout(1.0).train()(x), torch.zeros_like(x))


def test_tfn_regression_output_is_bounded_to_the_sentiment_range(tiny_frames_corpus):
    torch.manual_seed(0)
    model = build_model("tfn_tiny", tiny_frames_corpus.dims, 1).eval()
    batch = _utterance_batch(tiny_frames_corpus, frames=True)
    with torch.no_grad():
        model.post[-1].bias.fill_(100.0)
        high = model(batch).logits
        model.post[-1].bias.fill_(-100.0)
        low = model(batch).logits
    assert torch.allclose(high, torch.full_like(high, 3.0)) and torch.allclose(low, torch.full_like(low, -3.0))
    unbounded = build_model("tfn_tiny", tiny_frames_corpus.dims, 1, output_bound=0.0).eval()
    with torch.no_grad():
        unbounded.post[-1].bias.fill_(100.0)
        assert unbounded(batch).logits.min() > 50


def test_tfn_text_ignores_padded_frames(tiny_frames_corpus):
    torch.manual_seed(0)
    model = build_model("tfn_tiny", tiny_frames_corpus.dims, 6).eval()
    batch = _utterance_batch(tiny_frames_corpus, frames=True)
    with torch.no_grad():
        assert torch.allclose(model(batch).logits, model(_pad(batch, 5)).logits, atol=1e-5)


# --- LMF ---------------------------------------------------------------------------------


def test_lmf_equals_tensor_fusion_with_the_rank_r_weight_tensor(tiny_frames_corpus):
    torch.manual_seed(0)
    model = LMF(tiny_frames_corpus.dims, 3, rank=3, audio_hidden=4, text_hidden=10, vision_hidden=3).eval()
    batch = _utterance_batch(tiny_frames_corpus, frames=True)
    with torch.no_grad():
        z = {m: torch.cat([torch.ones(len(batch.labels), 1), model.represent(batch, m)], -1)
             for m in model.modalities}
        # The full TFN tensor Z = z_a o z_t o z_v and the weight W = sum_r w_r W_a^r o W_t^r o W_v^r.
        tensor = torch.einsum("bi,bj,bk->bijk", z["audio"], z["text"], z["vision"])
        f = model.factors
        weight = torch.einsum("r,ric,rjc,rkc->ijkc", model.fusion_weights[0], f["audio"], f["text"], f["vision"])
        expected = torch.einsum("bijk,ijkc->bc", tensor, weight) + model.fusion_bias
        assert torch.allclose(model(batch).logits, expected, atol=1e-5)


def test_lmf_fusion_weights_stay_fixed_as_in_the_authors_optimiser(tiny_frames_corpus):
    torch.manual_seed(0)
    model = build_model("lmf_tiny", tiny_frames_corpus.dims, 1).train()
    before = model.fusion_weights.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=0.01)
    model(_utterance_batch(tiny_frames_corpus, frames=True)).logits.pow(2).mean().backward()
    optimizer.step()
    assert torch.equal(model.fusion_weights, before)
    learnt = build_model("lmf_tiny", tiny_frames_corpus.dims, 1, learn_fusion_weights=True)
    assert learnt.fusion_weights.requires_grad and learnt.fusion_bias.requires_grad


def test_lmf_trains_on_a_batch_of_one(tiny_corpus):
    model = build_model("lmf", tiny_corpus.dims, 6).train()
    batch = next(split_tensors(tiny_corpus, "train", want_frames=True).batches("utterance", 1))
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


def test_mfn_starts_from_zero_states_unless_asked(tiny_corpus):
    assert not any("initial" in n for n, _ in build_model("mfn_tiny", tiny_corpus.dims, 6).named_parameters())
    learnt = build_model("mfn_tiny", tiny_corpus.dims, 6, learn_initial_state=True)
    assert {n for n, _ in learnt.named_parameters() if "initial" in n} >= {"encoder.initial_memory"}


def test_mfn_average_audio_vision_reads_the_mean_at_every_text_step(tiny_frames_corpus):
    torch.manual_seed(0)
    model = build_model("mfn_tiny", tiny_frames_corpus.dims, 1, average_audio_vision=True).eval()
    batch = _utterance_batch(tiny_frames_corpus, frames=True)
    feats, masks = model.encoder._inputs(batch)
    for m in ("audio", "vision"):
        assert feats[m].shape[1] == batch.features["text"].shape[1]
        assert torch.equal(masks[m], batch.masks["text"])
        mean = (batch.features[m] * batch.masks[m].unsqueeze(-1)).sum(1) / batch.masks[m].sum(1, keepdim=True)
        assert torch.allclose(feats[m][:, -1], mean, atol=1e-6)


# --- MFM ---------------------------------------------------------------------------------


def test_mfm_encoders_and_decoders_are_the_authors(tiny_frames_corpus):
    model = build_model("mfm_tiny", tiny_frames_corpus.dims, 1)
    assert isinstance(model.discriminative, MFNEncoder)
    for m in tiny_frames_corpus.dims:
        assert isinstance(model.generative[m].rnn, nn.LSTM)
        assert isinstance(model.decoders[m].cell, nn.LSTMCell)
    batch = _utterance_batch(tiny_frames_corpus, frames=True)
    out = model.train()(batch)
    assert set(out.aux_loss) == {"mmd"} | {f"reconstruction_{m}" for m in tiny_frames_corpus.dims}
    assert model.eval()(batch).aux_loss == {}


def test_mfm_reconstruction_loss_falls_on_a_fixed_batch(tiny_frames_corpus):
    torch.manual_seed(0)
    model = build_model("mfm_tiny", tiny_frames_corpus.dims, 6, audio_dropout=0.0, text_dropout=0.0,
                        vision_dropout=0.0, zy_dropout=0.0, audio_f=16, text_f=16, vision_f=16).train()
    batch = _utterance_batch(tiny_frames_corpus, frames=True, size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        out = model(batch)
        loss = sum(v for k, v in out.aux_loss.items() if k.startswith("reconstruction"))
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
