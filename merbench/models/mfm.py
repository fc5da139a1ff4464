"""MFM: Multimodal Factorization Model (Tsai, Liang et al., ICLR 2019, "Learning Factorized
Multimodal Representations"); defaults follow the authors' code (github.com/pliang279/factorized,
``best_acc`` in mfm_mosi.py: discriminative factor 32 -> features 16, modality factors 32,
MMD and reconstruction weights 1, Adam at its default lr 0.001)."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from merbench.data.batching import Batch
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS


def _factor_to_features(d_in: int, d_out: int, dropout: float) -> nn.Sequential:
    """The authors' z -> f maps: two ReLU layers (features are non-negative)."""
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


class MFM(MerModel):
    """A multimodal discriminative factor plus one generative factor per modality.

    The discriminative factor Z_y is inferred from all modalities together and alone
    predicts the label; each modality-specific factor Z_m is inferred from its modality
    alone. Each modality is reconstructed from its own features F_m together with the
    shared F_y, so F_y must carry what the modalities have in common and F_m the rest.
    Training adds ``aux_loss["reconstruction"]`` (sum over modalities of the mean squared
    reconstruction error) and ``aux_loss["mmd"]`` (MMD of every factor to N(0, I)).
    Input: ``features[m]`` ``(B, D_m)``. Output: logits ``(B, C)``.
    """

    def __init__(self, dims: dict[str, int], num_outputs: int, *, hidden: int = 64,
                 zy_size: int = 32, fy_size: int = 16, zm_size: int = 32, fm_size: int = 32,
                 dropout: float = 0.2) -> None:
        super().__init__(dims, num_outputs)
        # Paper: the discriminative encoder is an MFN and the generative encoders and
        # decoders are LSTMs over word-aligned sequences; merbench gives one vector per
        # utterance and modality, where a recurrence has a single step, so these are MLPs:
        # the discriminative encoder fuses the concatenated modality vectors.
        self.discriminative = nn.Sequential(
            nn.Linear(sum(dims.values()), hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, zy_size))
        self.generative = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, zm_size)) for m, d in dims.items()
        })
        # Paper: the authors' code tunes one dropout per map (0 to 0.7); one value here.
        self.to_fy = _factor_to_features(zy_size, fy_size, dropout)
        self.to_fm = nn.ModuleDict({m: _factor_to_features(zm_size, fm_size, dropout) for m in dims})
        self.decoders = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(fy_size + fm_size, hidden), nn.ReLU(), nn.Linear(hidden, d))
            for m, d in dims.items()
        })
        self.classifier = nn.Sequential(nn.Linear(fy_size, fy_size), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(fy_size, num_outputs))

    def forward(self, batch: Batch) -> Output:
        x = {m: batch.features[m] for m in self.modalities}  # (B, D_m)
        zy = self.discriminative(torch.cat([x[m] for m in self.modalities], dim=-1))  # (B, Zy)
        fy = self.to_fy(zy)  # (B, Fy)
        logits = self.classifier(fy)  # (B, C)
        if not self.training:
            return Output(logits)
        zm = {m: self.generative[m](x[m]) for m in self.modalities}  # (B, Zm)
        reconstruction = sum(
            F.mse_loss(self.decoders[m](torch.cat([fy, self.to_fm[m](zm[m])], dim=-1)), x[m])
            for m in self.modalities
        )
        # Paper: the prior-matching term of MFM's Wasserstein-autoencoder objective, as MMD
        # (the paper's choice); the authors' code weighs it by lda_mmd = 1.
        mmd = mmd_to_normal(zy) + sum(mmd_to_normal(zm[m]) for m in self.modalities)
        return Output(logits, {"reconstruction": reconstruction, "mmd": mmd})


MODELS.register("mfm", MFM)
MODELS.register("mfm_tiny", partial(MFM, hidden=8, zy_size=4, fy_size=4, zm_size=4, fm_size=4), tiny=True)
