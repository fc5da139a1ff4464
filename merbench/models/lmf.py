"""LMF: Low-rank Multimodal Fusion (Liu, Shen et al., ACL 2018, "Efficient Low-rank
Multimodal Fusion with Modality-Specific Factors"); defaults follow the authors' code
(github.com/Justin1904/Low-rank-Multimodal-Fusion, the rank-4 IEMOCAP row of its
hyperparams.txt: rank 4, subnetwork widths audio 8 / video 4 / text 64, no dropout)."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from merbench.data.batching import Batch
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS


class SubNet(nn.Module):
    """The authors' audio / video subnetwork: BatchNorm, dropout, three ReLU layers."""

    def __init__(self, d_in: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(d_in)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.Sequential(
            nn.Linear(d_in, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            # A batch of one has no batch statistics (the last batch of an epoch can be one
            # utterance): normalise it with the running statistics instead of failing.
            norm = self.norm
            x = F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                             training=False, eps=norm.eps)
        else:
            x = self.norm(x)
        return self.layers(self.drop(x))  # (B, H)


class LMF(MerModel):
    """The TFN tensor computed without forming it: one low-rank factor per modality.

    Each modality vector z_m, with a 1 appended, is projected by ``rank`` factors
    ``W_m^(i)`` of shape ``(H_m + 1, C)``; the projections are multiplied elementwise across
    modalities and the ``rank`` products combined by learnt weights. This equals a TFN whose
    weight tensor has CP-rank ``rank``, at a cost linear in the number of modalities.
    Input: ``features[m]`` ``(B, D_m)``. Output: logits ``(B, C)``.
    """

    def __init__(self, dims: dict[str, int], num_outputs: int, *, rank: int = 4,
                 audio_hidden: int = 8, text_hidden: int = 64, vision_hidden: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__(dims, num_outputs)
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        self.rank = rank
        hidden = {"audio": audio_hidden, "text": text_hidden, "vision": vision_hidden}
        # Paper: the text subnetwork is an LSTM over word vectors (hidden 128) and a linear
        # layer to 64; merbench gives text as one utterance vector, so text uses the same
        # three-layer subnetwork as audio and video, 64 wide.
        self.subnets = nn.ModuleDict({m: SubNet(d, hidden[m], dropout) for m, d in dims.items()})
        # One factor per modality: (rank, H_m + 1, C); the +1 row carries the appended 1.
        self.factors = nn.ParameterDict({
            m: nn.Parameter(torch.empty(rank, hidden[m] + 1, num_outputs)) for m in dims
        })
        # Paper: the rank-1 products are summed; the authors' code weighs them with learnt
        # weights plus a bias ("more flexibility"), which is followed here.
        self.fusion_weights = nn.Parameter(torch.empty(1, rank))
        self.fusion_bias = nn.Parameter(torch.zeros(num_outputs))
        for factor in self.factors.values():
            nn.init.xavier_normal_(factor)
        nn.init.xavier_normal_(self.fusion_weights)

    def forward(self, batch: Batch) -> Output:
        fused = None
        for m in self.modalities:
            z = self.subnets[m](batch.features[m])  # (B, H_m)
            z = torch.cat([torch.ones_like(z[:, :1]), z], dim=-1)  # (B, H_m + 1)
            projected = torch.einsum("bh,rhc->rbc", z, self.factors[m])  # (R, B, C)
            fused = projected if fused is None else fused * projected
        logits = torch.einsum("r,rbc->bc", self.fusion_weights[0], fused) + self.fusion_bias  # (B, C)
        return Output(logits)


MODELS.register("lmf", LMF)
MODELS.register("lmf_tiny", partial(LMF, rank=2, audio_hidden=6, text_hidden=6, vision_hidden=6),
                tiny=True)
