"""MCN-CL: multimodal cross-attention network and contrastive learning (Li, Wu and Li,
arXiv:2511.10892, 2025).

Only the abstract is available and there is no official code: it names a triple-query
cross-attention, the temporal modelling of facial (visual) dynamics, and a contrastive loss with
hard-negative mining against class imbalance. Sizes, the time axis of the visual model and the
form of the loss are merbench's choices, marked ``Paper:`` here and in docs/models/mcn_cl.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from merbench.data.batching import Batch
from merbench.models._blocks import AttentionBlock, masked_mean, sinusoidal_positions
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS

VISION_AXES = ("dialogue", "frames")
# Fill for excluded similarities: finite, so log-sum-exp over an all-excluded row stays finite.
EXCLUDED = -1.0e4


def run_gru(gru: nn.GRU, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A GRU over the valid (leading) steps of each sequence; padded steps come back as zeros."""
    lengths = mask.sum(1).clamp(min=1).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=x.shape[1])
    return out  # (N, T, H)


def hard_negative_contrastive(z: torch.Tensor, labels: torch.Tensor, temperature: float,
                              hardest: int | None) -> torch.Tensor:
    """Supervised contrastive loss; with ``hardest`` only the k most similar negatives count.

    For anchor i and each positive p (same label, p != i):
    ``-log(exp(s_ip) / (exp(s_ip) + sum over kept negatives n of exp(s_in)))``, averaged over
    p, then over anchors that have a positive and a negative. ``z``: ``(N, H)``; ``labels``:
    ``(N,)``, -1 = no label (left out).
    """
    keep = labels >= 0
    z, y = F.normalize(z[keep], dim=-1), labels[keep]
    n = y.shape[0]
    sim = z @ z.T / temperature  # (N, N)
    same = y[:, None] == y[None, :]
    positive = same & ~torch.eye(n, dtype=torch.bool, device=z.device)
    negative_sim = sim.masked_fill(same, EXCLUDED)  # (N, N)
    if hardest is not None and hardest < n:
        # The hardest negatives are the most similar ones of another class. Without mining,
        # the many negatives of the frequent classes fill the denominator and the few
        # confusable ones weigh little; keeping the top k puts the weight on the confusions.
        negative_sim = negative_sim.topk(hardest, dim=-1).values  # (N, k)
    negatives = torch.logsumexp(negative_sim, dim=-1, keepdim=True)  # (N, 1)
    pair_loss = torch.logaddexp(sim, negatives) - sim  # (N, N)
    anchors = positive.any(-1) & (~same).any(-1)
    if not anchors.any():
        return z.sum() * 0.0
    per_anchor = (pair_loss * positive).sum(-1) / positive.sum(-1).clamp(min=1)
    return per_anchor[anchors].mean()


class MCNCL(MerModel):
    """MCN-CL: triple-query cross-attention, visual temporal model, hard-negative contrastive loss.

    Paper: Li, Wu and Li, "MCN-CL: Multimodal Cross-Attention Network and Contrastive Learning
    for Multimodal Emotion Recognition", arXiv:2511.10892, 2025 (abstract only; no official code).

    Input (``inputs = "frames"``): ``features[m]`` ``(B, L, T, D_m)`` with ``masks[m]``
    ``(B, L, T)``, ``utt_mask`` ``(B, L)``; utterance vectors arrive as one-frame sequences.
    Output: logits ``(B, L, C)``; ``aux_loss["contrastive"]`` in training mode.
    """

    level = "dialogue"
    inputs: ClassVar[str] = "frames"
    components: ClassVar[tuple[str, ...]] = ("triple_query", "hard_negative", "contrastive")
    title: ClassVar[str] = "MCN-CL (full model)"
    # Paper: the abstract names no ablation rows; these are merbench's.
    component_titles: ClassVar[dict[str, str]] = {
        "triple_query": "Without triple-query cross-attention",
        "hard_negative": "Without hard negative mining",
        "contrastive": "Without contrastive learning",
    }

    @classmethod
    def active_components(cls, modalities: Sequence[str]) -> tuple[str, ...]:
        """Each modality queries the others: the triple query needs two. The contrastive loss
        (and its hard-negative mining) reads the fused embedding, which one modality has too:
        on one modality what trains is an utterance-level MLP with a contrastive loss."""
        if len(set(modalities)) > 1:
            return cls.components
        return tuple(c for c in cls.components if c != "triple_query")

    def __init__(self, dims: dict[str, int], num_outputs: int, *, hidden: int = 128,
                 heads: int = 4, dropout: float = 0.1, vision_axis: str = "dialogue",
                 temperature: float = 0.1, hard_negative_k: int = 32, triple_query: bool = True,
                 hard_negative: bool = True, contrastive: bool = True) -> None:
        super().__init__(dims, num_outputs)
        if heads < 1 or hidden % heads or hidden % 2:
            raise ValueError(f"hidden ({hidden}) must be even and divisible by heads ({heads})")
        if vision_axis not in VISION_AXES:
            raise ValueError(f"vision_axis must be one of {VISION_AXES}, got {vision_axis!r}")
        self.hidden = hidden
        self.vision_axis = vision_axis
        self.temperature = temperature
        self.projection = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, hidden), nn.LayerNorm(hidden)) for m, d in dims.items()
        })
        # Paper: "dynamic facial action unit time modeling" without a named model; a
        # bidirectional GRU over vision frames within the utterance (vision_axis="frames", for
        # corpora with frame sequences) or over the dialogue's utterances (the default: the
        # IEMOCAP and MELD releases give one visual vector per utterance).
        self.vision_gru = (nn.GRU(hidden, hidden // 2, batch_first=True, bidirectional=True)
                           if "vision" in dims else None)
        # What these modalities can build comes from active_components alone, so the
        # declaration (recorded in result.json, marked in tables) cannot drift from the layers.
        active = self.active_components(list(dims))
        # Each modality queries the other two (with two modalities, the other one; with one,
        # there is nothing to query and nothing is built). Off: each stream goes on as it is.
        self.triple_query = nn.ModuleDict({
            m: AttentionBlock(hidden, heads, dropout) for m in dims
        }) if triple_query and "triple_query" in active else None
        self.fusion = nn.Sequential(nn.Linear(hidden * len(dims), hidden), nn.ReLU(),
                                    nn.Dropout(dropout))
        self.classifier = nn.Linear(hidden, num_outputs)
        self.drop = nn.Dropout(dropout)
        self.contrastive = contrastive and "contrastive" in active
        # Only acts through the contrastive loss: with contrastive off it changes nothing.
        self.hardest = hard_negative_k if hard_negative and "hard_negative" in active else None

    def _utterance_streams(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One vector per utterance and modality, ``(B, L, H)``; zeros at padding."""
        utt_mask = batch.utt_mask
        streams = {}
        for m in self.modalities:
            x, mask = batch.features[m][utt_mask], batch.masks[m][utt_mask]  # (N, T, D), (N, T)
            if m == "vision" and self.vision_axis == "frames":
                frames = run_gru(self.vision_gru, self.projection[m](x), mask)  # (N, T, H)
                v = masked_mean(frames, mask)  # (N, H)
            else:
                v = self.projection[m](masked_mean(x, mask))  # (N, H)
            full = v.new_zeros(*utt_mask.shape, self.hidden)
            full[utt_mask] = v
            streams[m] = full
        if self.vision_gru is not None and self.vision_axis == "dialogue":
            streams["vision"] = run_gru(self.vision_gru, streams["vision"], utt_mask)  # (B, L, H)
        return streams

    def forward(self, batch: Batch) -> Output:
        utt_mask = batch.utt_mask  # (B, L)
        # Paper: silent on order; fixed sinusoidal encodings of the utterance index.
        position = sinusoidal_positions(batch.positions, self.hidden)
        x = {m: self.drop(v + position) for m, v in self._utterance_streams(batch).items()}
        if self.triple_query is not None:
            # Paper: the keys are the other modalities' utterances across the whole dialogue,
            # so each query reads cross-modal cues and context at once.
            queried = {}
            for m in self.modalities:
                others = [n for n in self.modalities if n != m]
                memory = torch.cat([x[n] for n in others], dim=1)  # (B, (M - 1) L, H)
                memory_mask = torch.cat([utt_mask] * len(others), dim=1)
                queried[m] = self.triple_query[m](x[m], memory, memory_mask)
            x = queried
        fused = self.fusion(torch.cat([x[m] for m in self.modalities], dim=-1))  # (B, L, H)
        logits = self.classifier(fused)  # (B, L, C)
        aux = {}
        if self.training and self.contrastive:
            aux["contrastive"] = hard_negative_contrastive(
                fused[utt_mask], batch.labels[utt_mask], self.temperature, self.hardest)
        return Output(logits, aux)


MODELS.register("mcn_cl", MCNCL)
MODELS.register("mcn_cl_tiny", partial(MCNCL, hidden=16, heads=2, hard_negative_k=4), tiny=True)
