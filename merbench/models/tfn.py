"""TFN: Tensor Fusion Network (Zadeh et al., EMNLP 2017, "Tensor Fusion Network for
Multimodal Sentiment Analysis"); defaults from the authors' code (hidden sizes 32 per
modality after the subnetworks, post-fusion MLP)."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from merbench.data.batching import Batch
from merbench.models._blocks import mlp
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS


class TFN(MerModel):
    """Outer product of the modality vectors, each with a 1 appended.

    The appended 1 keeps the unimodal and bimodal terms inside the trimodal tensor.
    Input: ``features[m]`` ``(B, D_m)``. Output: logits ``(B, C)``.
    """

    def __init__(self, dims: dict[str, int], num_outputs: int, *, hidden: int = 32,
                 post_fusion: int = 128, dropout: float = 0.3) -> None:
        super().__init__(dims, num_outputs)
        # Paper: modality subnetworks are a 3-layer MLP (audio, vision) and an LSTM (text over
        # words); merbench receives one vector per utterance, so every subnetwork is an MLP.
        self.subnets = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout),
                             nn.Linear(hidden, hidden), nn.ReLU())
            for m, d in dims.items()
        })
        fused = (hidden + 1) ** len(dims)
        self.post = mlp(fused, post_fusion, num_outputs, dropout, layers=2)

    def forward(self, batch: Batch) -> Output:
        tensor = None
        for m in self.modalities:
            z = self.subnets[m](batch.features[m])  # (B, H)
            z = torch.cat([z, torch.ones_like(z[:, :1])], dim=-1)  # (B, H + 1)
            # Running outer product: (B, P) x (B, H + 1) -> (B, P * (H + 1))
            tensor = z if tensor is None else torch.einsum("bp,bq->bpq", tensor, z).flatten(1)
        return Output(self.post(tensor))


MODELS.register("tfn", TFN)
MODELS.register("tfn_tiny", partial(TFN, hidden=4, post_fusion=8), tiny=True)
