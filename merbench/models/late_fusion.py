"""Early- and late-fusion MLP baselines: the floor every fusion model must beat."""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
from torch import nn

from merbench.data.batching import Batch
from merbench.models._blocks import mlp
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS


class FusionMLP(MerModel):
    """Concatenation (early) or averaged per-modality logits (late) with MLP encoders.

    Input: ``features[m]`` ``(B, D_m)`` per modality. Output: logits ``(B, C)``.
    """

    def __init__(self, dims: dict[str, int], num_outputs: int, *, hidden: int = 128,
                 dropout: float = 0.3, fusion: Literal["early", "late"] = "early") -> None:
        super().__init__(dims, num_outputs)
        if fusion not in ("early", "late"):
            raise ValueError(f"fusion must be 'early' or 'late', got {fusion!r}")
        self.fusion = fusion
        self.encoders = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout))
            for m, d in dims.items()
        })
        if fusion == "early":
            self.head = mlp(hidden * len(dims), hidden, num_outputs, dropout)
        else:
            self.heads = nn.ModuleDict({m: mlp(hidden, hidden, num_outputs, dropout) for m in dims})

    def forward(self, batch: Batch) -> Output:
        encoded = {m: self.encoders[m](batch.features[m]) for m in self.modalities}  # (B, H)
        if self.fusion == "early":
            return Output(self.head(torch.cat([encoded[m] for m in self.modalities], dim=-1)))
        logits = torch.stack([self.heads[m](encoded[m]) for m in self.modalities]).mean(0)
        return Output(logits)


MODELS.register("mlp", FusionMLP, summary="Early fusion: an MLP encoder per modality, the encodings "
                                          "concatenated, then an MLP.")
MODELS.register("mlp_tiny", partial(FusionMLP, hidden=8), tiny=True)
MODELS.register("late_mlp", partial(FusionMLP, fusion="late"),
                summary="Late fusion: an MLP per modality, their logits averaged.")
