"""TFN: Tensor Fusion Network (Zadeh et al., EMNLP 2017, "Tensor Fusion Network for
Multimodal Sentiment Analysis"); defaults from the paper's section 4 and the PyTorch code of
the LMF authors (github.com/Justin1904/TensorFusionNetworks): audio and video subnetworks of
3 ReLU layers of 32 units, a 128-unit text embedding, a post-fusion MLP of 2 layers of 128."""

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
                 text_hidden: int = 128, post_fusion: int = 128, dropout: float = 0.3) -> None:
        super().__init__(dims, num_outputs)
        width = {m: text_hidden if m == "text" else hidden for m in dims}
        # Paper: audio and video subnetworks are 3 ReLU layers of 32 units; the text
        # subnetwork is an LSTM over words followed by 2 ReLU layers of 128. merbench
        # receives one text vector per utterance, so text gets 3 ReLU layers of 128.
        self.subnets = nn.ModuleDict({
            m: nn.Sequential(nn.Dropout(dropout),
                             nn.Linear(d, width[m]), nn.ReLU(),
                             nn.Linear(width[m], width[m]), nn.ReLU(),
                             nn.Linear(width[m], width[m]), nn.ReLU())
            for m, d in dims.items()
        })
        fused = 1
        for m in dims:
            fused *= width[m] + 1
        self.post = mlp(fused, post_fusion, num_outputs, dropout, layers=2)

    def forward(self, batch: Batch) -> Output:
        tensor = None
        for m in self.modalities:
            z = self.subnets[m](batch.features[m])  # (B, H_m)
            z = torch.cat([z, torch.ones_like(z[:, :1])], dim=-1)  # (B, H_m + 1)
            # Running outer product: (B, P) x (B, H + 1) -> (B, P * (H + 1))
            tensor = z if tensor is None else torch.einsum("bp,bq->bpq", tensor, z).flatten(1)
        return Output(self.post(tensor))


MODELS.register("tfn", TFN)
MODELS.register("tfn_tiny", partial(TFN, hidden=4, text_hidden=4, post_fusion=8), tiny=True)
