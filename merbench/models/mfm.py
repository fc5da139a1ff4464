"""MFM: Multimodal Factorization Model (Tsai, Liang et al., ICLR 2019, "Learning Factorized
Multimodal Representations"), layer by layer as the authors' PyTorch code in thuiar/MMSA
(src/MMSA/models/singleTask/MFM.py, taken from github.com/pliang279/factorized); defaults are
MMSA's MOSEI configuration (config_regression.json: an MFN encoder with LSTMs text 256 /
audio 32 / video 256 and memory 64, Z_y 32 -> F_y 16, Z text 256 / audio 80 / video 80,
F text 32 / audio 80 / video 32). Its loss weights (lda_mmd 10, lda_xl 5, lda_xa 2,
lda_xv 5) are recipe ``train.aux_weights``. docs/models/mfm.md lists what differs and why."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from merbench.data.batching import Batch
from merbench.models.base import MerModel, Output
from merbench.models.mfn import MFNEncoder
from merbench.models.tfn import TextSubNet
from merbench.registry import MODELS


def _factor_to_features(d_in: int, d_out: int, dropout: float) -> nn.Sequential:
    """The authors' z -> f maps: linear, ReLU, dropout, linear, ReLU (features are non-negative)."""
    return nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(d_out, d_out), nn.ReLU())


def mmd_to_normal(z: torch.Tensor) -> torch.Tensor:
    """Maximum mean discrepancy between the rows of ``z`` (N, K) and as many N(0, I) draws.

    Gaussian kernel exp(-mean_k (x_k - y_k)^2 / K), as in the authors' code (taken from
    InfoVAE): the Wasserstein-autoencoder penalty that pulls each factor towards its prior.
    """
    prior = torch.randn_like(z)

    def kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        sq = (x.unsqueeze(1) - y.unsqueeze(0)).pow(2).mean(-1)  # (N, N)
        return torch.exp(-sq / z.shape[-1])

    return kernel(prior, prior).mean() + kernel(z, z).mean() - 2 * kernel(prior, z).mean()


class FrameDecoder(nn.Module):
    """The authors' decoder: an LSTM cell fed [F_y, F_m] at the first step and its own output
    afterwards, from a zero state; each step's output through a linear layer is a frame."""

    def __init__(self, size: int, d_out: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(size, size)
        self.linear = nn.Linear(size, d_out)

    def forward(self, f: torch.Tensor, steps: int) -> torch.Tensor:
        h = c = torch.zeros_like(f)  # (B, H)
        x, outputs = f, []
        for _ in range(steps):
            h, c = self.cell(x, (h, c))
            outputs.append(h)
            x = h
        return self.linear(torch.stack(outputs, dim=1))  # (B, T, D)


class MFM(MerModel):
    """A multimodal discriminative factor plus one generative factor per modality.

    The discriminative factor Z_y is inferred by an MFN over all modalities and alone
    predicts the label; each modality-specific factor Z_m is inferred by an LSTM over its
    modality alone. Each modality's frames are decoded from its own features F_m together
    with the shared F_y, so F_y must carry what the modalities have in common and F_m the
    rest. Training adds ``aux_loss["reconstruction_<m>"]`` (mean squared error over the
    valid frames of modality m) and ``aux_loss["mmd"]`` (MMD of every factor to N(0, I)),
    each weighted by ``train.aux_weights``.
    Input: ``features[m]`` ``(B, T_m, D_m)`` with ``masks[m]``. Output: logits ``(B, C)``, unbounded.
    """

    inputs = "frames"

    def __init__(self, dims: dict[str, int], num_outputs: int, *, audio_hidden: int = 32,
                 text_hidden: int = 256, vision_hidden: int = 256, memory: int = 64,
                 attention_hidden: int = 1278, attention_dropout: float = 0.5,
                 memory_hidden: int = 32, memory_dropout: float = 0.7,
                 retain_hidden: int = 64, retain_dropout: float = 0.5,
                 update_hidden: int = 128, update_dropout: float = 0.2,
                 zy_size: int = 32, fy_size: int = 16, zy_dropout: float = 0.2,
                 output_dropout: float = 0.2,
                 audio_z: int = 80, text_z: int = 256, vision_z: int = 80,
                 audio_f: int = 80, text_f: int = 32, vision_f: int = 32,
                 audio_dropout: float = 0.7, text_dropout: float = 0.7, vision_dropout: float = 0.7) -> None:
        super().__init__(dims, num_outputs)
        hidden = {"audio": audio_hidden, "text": text_hidden, "vision": vision_hidden}
        z_size = {"audio": audio_z, "text": text_z, "vision": vision_z}
        f_size = {"audio": audio_f, "text": text_f, "vision": vision_f}
        dropout = {"audio": audio_dropout, "text": text_dropout, "vision": vision_dropout}
        # Paper: the authors' MFN encoder also builds MFN's output layer and never uses it;
        # merbench builds only the encoder (fewer parameters, same function).
        self.discriminative = MFNEncoder(
            dims, hidden, memory=memory, attention_hidden=attention_hidden,
            attention_dropout=attention_dropout, memory_hidden=memory_hidden,
            memory_dropout=memory_dropout, retain_hidden=retain_hidden, retain_dropout=retain_dropout,
            update_hidden=update_hidden, update_dropout=update_dropout,
            learn_initial_state=False, average_audio_vision=False)
        self.to_zy = nn.Linear(self.discriminative.size, zy_size)
        self.to_fy = _factor_to_features(zy_size, fy_size, zy_dropout)
        self.classifier = nn.Sequential(nn.Linear(fy_size, fy_size), nn.ReLU(), nn.Dropout(output_dropout),
                                        nn.Linear(fy_size, num_outputs))
        # The authors' generative encoders: an LSTM over the frames, its last state through a
        # linear layer, the same block as TFN's text subnetwork.
        self.generative = nn.ModuleDict({m: TextSubNet(d, z_size[m], z_size[m]) for m, d in dims.items()})
        self.to_fm = nn.ModuleDict({m: _factor_to_features(z_size[m], f_size[m], dropout[m]) for m in dims})
        self.decoders = nn.ModuleDict({m: FrameDecoder(fy_size + f_size[m], d) for m, d in dims.items()})

    def forward(self, batch: Batch) -> Output:
        zy = self.to_zy(self.discriminative(batch))  # (B, Zy)
        fy = self.to_fy(zy)  # (B, Fy)
        logits = self.classifier(fy)  # (B, C)
        if not self.training:
            return Output(logits)
        aux = {}
        mmd = mmd_to_normal(zy)
        for m in self.modalities:
            x, mask = batch.features[m], batch.masks[m]  # (B, T_m, D_m), (B, T_m)
            zm = self.generative[m](x, mask)  # (B, Zm)
            mmd = mmd + mmd_to_normal(zm)
            decoded = self.decoders[m](torch.cat([fy, self.to_fm[m](zm)], dim=-1), x.shape[1])  # (B, T_m, D_m)
            # Paper: the authors' MSE averages over every padded frame; merbench over the valid ones.
            err = (decoded - x).pow(2).mean(-1)  # (B, T_m)
            aux[f"reconstruction_{m}"] = (err * mask).sum() / mask.sum().clamp(min=1)
        # Paper: the prior-matching term of MFM's Wasserstein-autoencoder objective, as MMD
        # on Z_y and every Z_m (the paper's choice and the authors' code).
        aux["mmd"] = mmd
        return Output(logits, aux)


MODELS.register("mfm", MFM)
MODELS.register("mfm_tiny", partial(MFM, audio_hidden=3, text_hidden=4, vision_hidden=3, memory=4,
                                    attention_hidden=4, memory_hidden=4, retain_hidden=4, update_hidden=4,
                                    zy_size=6, fy_size=6, audio_z=4, text_z=4, vision_z=4,
                                    audio_f=4, text_f=4, vision_f=4), tiny=True)
