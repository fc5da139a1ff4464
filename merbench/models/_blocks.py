"""Generic plumbing shared by model files: masked pooling, small MLPs. No paper logic here."""

from __future__ import annotations

import torch
from torch import nn


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None, dim: int = 1) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` counting only positions where ``mask`` is True."""
    if mask is None:
        return x.mean(dim)
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim) / w.sum(dim).clamp(min=1.0)


def mlp(d_in: int, d_hidden: int, d_out: int, dropout: float, layers: int = 1) -> nn.Sequential:
    """``layers`` hidden ReLU layers with dropout, then a linear output layer."""
    mods: list[nn.Module] = []
    d = d_in
    for _ in range(layers):
        mods += [nn.Linear(d, d_hidden), nn.ReLU(), nn.Dropout(dropout)]
        d = d_hidden
    mods.append(nn.Linear(d, d_out))
    return nn.Sequential(*mods)
