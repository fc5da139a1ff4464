"""ICCN: Interaction Canonical Correlation Network (Sun, Sarma, Sethares, Liang, AAAI 2020,
"Learning Relationships between Text, Audio, and Video via Deep Canonical Correlation for
Multimodal Language Analysis"). The authors released no code; the sizes here are merbench's
choice (see docs/models/iccn.md), the structure follows the paper."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from merbench.data.batching import Batch
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS


def canonical_correlation(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean canonical correlation between the rows of ``x`` (N, P) and ``y`` (N, Q).

    The DCCA objective of Andrew et al. (ICML 2013): whiten each view's covariance (with a
    ridge ``eps`` relative to the view's mean variance) and take the singular values of the
    whitened cross-covariance. Cholesky whitening keeps the gradient stable where an
    inverse square root through an eigendecomposition would not be.
    """
    n = x.shape[0]
    x = x - x.mean(0)
    y = y - y.mean(0)
    denom = max(n - 1, 1)

    def whitener(v: torch.Tensor) -> torch.Tensor:
        cov = v.T @ v / denom  # (P, P)
        scale = cov.diagonal().mean().clamp(min=1e-8).detach()
        return torch.linalg.cholesky(cov + eps * scale * torch.eye(cov.shape[0], device=v.device, dtype=v.dtype))

    lx, ly = whitener(x), whitener(y)
    cross = x.T @ y / denom  # (P, Q)
    t = torch.linalg.solve_triangular(lx, cross, upper=False)  # Lx^-1 Sxy
    t = torch.linalg.solve_triangular(ly, t.T, upper=False).T  # Lx^-1 Sxy Ly^-T
    return torch.linalg.svdvals(t).mean()


class OuterProductCNN(nn.Module):
    """A text-based view of another modality: the outer product of the two encodings read
    by a small CNN, then projected to the CCA space."""

    def __init__(self, hidden: int, channels: int, d_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = hidden // 2 // 2
        self.project = nn.Linear(channels * side * side, d_out)

    def forward(self, anchor: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        outer = torch.einsum("bi,bj->bij", anchor, other).unsqueeze(1)  # (B, 1, H, H)
        return self.project(self.conv(outer).flatten(1))  # (B, K)


class ICCN(MerModel):
    """Text-based audio and text-based video, made maximally correlated by deep CCA.

    Each modality is encoded; the outer products text x audio and text x vision are read by
    CNNs into two views, and a CCA loss (``aux_loss["cca"]``, minus the mean canonical
    correlation, so lower is better) pulls the views together. The classifier reads both
    views and the text encoding.
    Without text, the first present modality (audio) takes text's place as the anchor.
    With an anchor and one other modality there is one outer-product view, and the CCA
    is between the two modality encodings; with one modality there is neither.
    Input: ``features[m]`` ``(B, D_m)``. Output: logits ``(B, C)``.
    """

    def __init__(self, dims: dict[str, int], num_outputs: int, *, hidden: int = 32,
                 channels: int = 16, cca_dim: int = 16, classifier_hidden: int = 64,
                 dropout: float = 0.2, cca_eps: float = 1e-3) -> None:
        super().__init__(dims, num_outputs)
        if hidden < 4:
            raise ValueError(f"hidden must be >= 4 (two 2x poolings of a hidden x hidden map), got {hidden}")
        self.cca_eps = cca_eps
        # Paper: text comes from word embeddings and audio / video from LSTMs over frames;
        # merbench gives one vector per utterance and modality, so each encoder is an MLP.
        self.encoders = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden))
            for m, d in dims.items()
        })
        # Paper: ICCN is defined for text, audio and video, with text as the anchor. For a
        # subset without text, merbench uses the first present modality as the anchor.
        self.anchor = "text" if "text" in dims else self.modalities[0]
        self.others = [m for m in self.modalities if m != self.anchor]
        self.views = nn.ModuleDict({m: OuterProductCNN(hidden, channels, cca_dim) for m in self.others})
        fused = hidden + cca_dim * len(self.others)
        self.classifier = nn.Sequential(nn.Linear(fused, classifier_hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(classifier_hidden, num_outputs))

    def forward(self, batch: Batch) -> Output:
        encoded = {m: self.encoders[m](batch.features[m]) for m in self.modalities}  # (B, H)
        anchor = encoded[self.anchor]
        views = {m: self.views[m](anchor, encoded[m]) for m in self.others}  # (B, K)
        fused = torch.cat([views[m] for m in self.others] + [anchor], dim=-1)  # (B, H + K * len(others))
        logits = self.classifier(fused)  # (B, C)
        aux = {}
        if self.training and self.others:
            # Paper: the DCCA is between text-based audio and text-based video. With a
            # single outer-product view there is no second view to correlate it with, so the
            # CCA falls back to the two modality encodings themselves.
            first, second = ((views[self.others[0]], views[self.others[1]]) if len(self.others) == 2
                             else (anchor, encoded[self.others[0]]))
            # Paper: ICCN minimises minus the sum of the canonical correlations; the mean is
            # used so that the term lies in [-1, 0] whatever cca_dim is. As we read the
            # paper, the CCA shapes the views and a downstream classifier then reads the
            # embedding; here both are trained at once (task loss + weighted "cca").
            aux["cca"] = -canonical_correlation(first, second, self.cca_eps)
        return Output(logits, aux)


MODELS.register("iccn", ICCN)
MODELS.register("iccn_tiny", partial(ICCN, hidden=4, channels=2, cca_dim=2, classifier_hidden=4), tiny=True)
