"""LMF: Low-rank Multimodal Fusion (Liu, Shen et al., ACL 2018, "Efficient Low-rank
Multimodal Fusion with Modality-Specific Factors"), layer by layer as the authors' PyTorch
code in thuiar/MMSA (src/MMSA/models/singleTask/LMF.py, taken from
github.com/Justin1904/Low-rank-Multimodal-Fusion); defaults are MMSA's MOSEI configuration
(config_regression.json: rank 4, hidden text 128 / audio 16 / video 128, dropouts 0.2).
docs/models/lmf.md lists what differs and why."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from merbench.data.batching import Batch
from merbench.models._blocks import masked_mean
from merbench.models.base import MerModel, Output
from merbench.models.tfn import SubNet, TextSubNet
from merbench.registry import MODELS


class LMF(MerModel):
    """The TFN tensor computed without forming it: one low-rank factor per modality.

    Each modality representation z_m, with a 1 prepended, is projected by ``rank`` factors
    ``W_m^(i)`` of shape ``(H_m + 1, C)``; the projections are multiplied elementwise across
    modalities and the ``rank`` products combined by fusion weights plus a bias. This equals a
    TFN whose weight tensor has CP-rank ``rank``, at a cost linear in the number of modalities.
    Audio and vision are averaged over their valid frames and go through TFN's ``SubNet``;
    text frames go through TFN's ``TextSubNet`` with output ``text_hidden // 2``.
    Input: ``features[m]`` ``(B, T_m, D_m)`` with ``masks[m]``. Output: logits ``(B, C)``.
    """

    inputs = "frames"

    def __init__(self, dims: dict[str, int], num_outputs: int, *, rank: int = 4,
                 audio_hidden: int = 16, text_hidden: int = 128, vision_hidden: int = 128,
                 audio_dropout: float = 0.2, vision_dropout: float = 0.2,
                 learn_fusion_weights: bool = False) -> None:
        super().__init__(dims, num_outputs)
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        self.rank = rank
        hidden = {"audio": audio_hidden, "vision": vision_hidden}
        dropout = {"audio": audio_dropout, "vision": vision_dropout}
        text_out = text_hidden // 2  # the authors' text output size
        self.subnets = nn.ModuleDict({
            m: TextSubNet(d, text_hidden, text_out) if m == "text" else SubNet(d, hidden[m], dropout[m])
            for m, d in dims.items()
        })
        width = {"text": text_out, **hidden}
        # One factor per modality: (rank, H_m + 1, C); row 0 carries the prepended 1.
        self.factors = nn.ParameterDict({
            m: nn.Parameter(torch.empty(rank, width[m] + 1, num_outputs)) for m in dims
        })
        # Paper: the rank-1 products are summed; the authors' code weighs them with fusion
        # weights plus a bias ("more flexibility") but leaves both out of its optimiser
        # (parameters()[:3] and [5:]), so they keep their initial values. That is the default
        # here; ``learn_fusion_weights`` trains them.
        self.fusion_weights = nn.Parameter(torch.empty(1, rank), requires_grad=learn_fusion_weights)
        self.fusion_bias = nn.Parameter(torch.zeros(num_outputs), requires_grad=learn_fusion_weights)
        for factor in self.factors.values():
            nn.init.xavier_normal_(factor)
        nn.init.xavier_normal_(self.fusion_weights)

    def represent(self, batch: Batch, m: str) -> torch.Tensor:
        """One modality's pre-fusion representation ``(B, H_m)``."""
        if m == "text":
            return self.subnets[m](batch.features[m], batch.masks[m])
        # Paper: MMSA averages audio and vision over all padded frames; merbench over the valid ones.
        return self.subnets[m](masked_mean(batch.features[m], batch.masks[m]))  # (B, D_m) -> (B, H_m)

    def forward(self, batch: Batch) -> Output:
        fused = None
        for m in self.modalities:
            z = self.represent(batch, m)  # (B, H_m)
            z = torch.cat([torch.ones_like(z[:, :1]), z], dim=-1)  # (B, H_m + 1)
            projected = torch.einsum("bh,rhc->rbc", z, self.factors[m])  # (R, B, C)
            fused = projected if fused is None else fused * projected
        # Paper: the authors' LMF has no output bound and no post-fusion dropout (it builds
        # one and never applies it).
        logits = torch.einsum("r,rbc->bc", self.fusion_weights[0], fused) + self.fusion_bias  # (B, C)
        return Output(logits)


MODELS.register("lmf", LMF)
MODELS.register("lmf_tiny", partial(LMF, rank=2, audio_hidden=6, text_hidden=6, vision_hidden=6),
                tiny=True)
