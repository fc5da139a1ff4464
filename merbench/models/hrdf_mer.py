"""HRDF-MER: hierarchical feature refinement and cascaded dynamic fusion (Lei, Mu and Wang,
Computer Speech & Language 100, 2026, article 101978).

Only the abstract is available and there is no official code: the abstract names the modules
and what each does, everything else (sizes, depths, the order of the cascade, the form of the
gate and of the loss) is merbench's choice, marked ``Paper:`` here and listed in
docs/models/hrdf_mer.md.

The walk of one batch of dialogues:
1. Per-modality projection to a shared width, plus the utterance's position in the dialogue.
2. HCFR = CAA (stacked acoustic <-> text cross-attention; each level's attention maps are the
   "hierarchical correlation matrices") then HFE (a Transformer per modality whose residual
   connections also carry the other modalities).
3. CMDF: a cascade text -> audio -> vision; each new modality reads the fusion so far through a
   cross-attention encoder, and a gated fusion unit weighs it against that fusion.
4. Cross-entropy (by the training loop) + the Cross-modal Label Contrastive loss (``aux_loss["clc"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from merbench.data.batching import Batch
from merbench.models._blocks import AttentionBlock, mlp, sinusoidal_positions
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS

# Paper: the abstract fixes no order for the cascade; text leads (the strongest modality on
# IEMOCAP and MELD), audio follows (it is aligned with text by CAA), vision enters last.
CASCADE_ORDER = ("text", "audio", "vision")


class HFELayer(nn.Module):
    """One HFE level: a self-attention block per modality with a cross-modal residual."""

    def __init__(self, modalities: list[str], dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict({m: AttentionBlock(dim, heads, dropout) for m in modalities})
        # Paper: "cross-modal residual connections" are not specified; each modality's residual
        # sum also gets a learned map of the mean of the other modalities. One modality: none.
        self.cross_residual = nn.ModuleDict({
            m: nn.Linear(dim, dim) for m in modalities
        }) if len(modalities) > 1 else None

    def forward(self, x: dict[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for m, h in x.items():
            extra = None
            if self.cross_residual is not None:
                others = torch.stack([x[n] for n in x if n != m]).mean(0)  # (B, L, H)
                extra = self.cross_residual[m](others)
            out[m] = self.blocks[m](h, h, mask, extra)
        return out


def cross_modal_label_contrastive(reps: dict[str, torch.Tensor], labels: torch.Tensor,
                                  temperature: float) -> torch.Tensor:
    """CLC loss: supervised contrastive between modalities.

    Each utterance in modality m is an anchor; the candidates are all utterances of the batch
    in another modality n, and the positives those with the same label (the anchor's own
    utterance among them). Averaged over anchors and over ordered modality pairs.
    ``reps[m]``: ``(N, H)``; ``labels``: ``(N,)``, -1 = no label (left out).
    """
    keep = labels >= 0
    if not keep.any():
        return sum(r.sum() for r in reps.values()) * 0.0
    normed = {m: F.normalize(r[keep], dim=-1) for m, r in reps.items()}
    y = labels[keep]
    positive = (y[:, None] == y[None, :]).float()  # (N, N), never an empty row: the diagonal
    losses = []
    for m in normed:
        for n in normed:
            if m != n:
                log_prob = (normed[m] @ normed[n].T / temperature).log_softmax(-1)  # (N, N)
                losses.append(-((log_prob * positive).sum(-1) / positive.sum(-1)).mean())
    return torch.stack(losses).mean()


class HRDFMER(MerModel):
    """HRDF-MER: cross-modal alignment and enhancement, cascaded gated fusion, CLC loss.

    Paper: Lei, Mu and Wang, "HRDF-MER: Hierarchical feature refinement and cascaded dynamic
    fusion for multimodal emotion recognition", Computer Speech & Language 100, 2026 (abstract
    only; no official code).

    Input: ``features[m]`` ``(B, L, D_m)`` per present modality, ``utt_mask`` ``(B, L)``,
    ``positions`` ``(B, L)``; ``labels`` ``(B, L)`` for the CLC loss in training.
    Output: logits ``(B, L, C)``; ``aux_loss["clc"]`` in training mode.
    """

    level = "dialogue"
    inputs: ClassVar[str] = "vectors"
    components: ClassVar[tuple[str, ...]] = ("caa", "hfe", "cmdf", "gate", "clc_loss")
    title: ClassVar[str] = "HRDF-MER (full model)"
    # Paper: the abstract reports ablations without naming their rows; these are merbench's.
    component_titles: ClassVar[dict[str, str]] = {
        "caa": "Without cross-modal adaptive alignment (CAA)",
        "hfe": "Without hierarchical feature enhancement (HFE)",
        "cmdf": "Without CMDF cross-attention encoder",
        "gate": "Without gated fusion unit",
        "clc_loss": "Without CLC loss",
    }

    @classmethod
    def active_components(cls, modalities: Sequence[str]) -> tuple[str, ...]:
        """CAA aligns audio with text: it needs both. CMDF, its gate and the cross-modal CLC
        loss act between modalities: they need two. HFE is always built (a Transformer per
        modality); with one modality its cross-modal residual is not, so on text alone what
        trains is a plain Transformer."""
        present = set(modalities)
        needs = {"caa": {"audio", "text"} <= present, "hfe": True, "cmdf": len(present) > 1,
                 "gate": len(present) > 1, "clc_loss": len(present) > 1}
        return tuple(c for c in cls.components if needs[c])

    def __init__(self, dims: dict[str, int], num_outputs: int, *, hidden: int = 128,
                 heads: int = 4, caa_layers: int = 2, hfe_layers: int = 2, dropout: float = 0.1,
                 clc_temperature: float = 0.1, caa: bool = True, hfe: bool = True,
                 cmdf: bool = True, gate: bool = True, clc_loss: bool = True) -> None:
        super().__init__(dims, num_outputs)
        if heads < 1 or hidden % heads or hidden % 2:
            raise ValueError(f"hidden ({hidden}) must be even and divisible by heads ({heads})")
        self.order = [m for m in CASCADE_ORDER if m in dims]
        self.hidden = hidden
        self.temperature = clc_temperature
        self.projection = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, hidden), nn.LayerNorm(hidden)) for m, d in dims.items()
        })
        self.drop = nn.Dropout(dropout)
        # What these modalities can build comes from active_components alone, so the
        # declaration (recorded in result.json, marked in tables) cannot drift from the layers.
        active = self.active_components(list(dims))
        # CAA aligns acoustic and text streams; without both there is nothing to align.
        self.caa = nn.ModuleList([
            nn.ModuleDict({"audio": AttentionBlock(hidden, heads, dropout),
                           "text": AttentionBlock(hidden, heads, dropout)})
            for _ in range(caa_layers)
        ]) if caa and "caa" in active else None
        self.hfe = nn.ModuleList([
            HFELayer(self.order, hidden, heads, dropout) for _ in range(hfe_layers)
        ]) if hfe and "hfe" in active else None
        # CMDF stage k adds modality order[k + 1]; a single modality has no stage.
        stages = len(self.order) - 1
        self.cmdf = nn.ModuleList([
            AttentionBlock(hidden, heads, dropout) for _ in range(stages)
        ]) if cmdf and "cmdf" in active else None
        self.gate = nn.ModuleList([
            nn.Linear(2 * hidden, hidden) for _ in range(stages)
        ]) if gate and "gate" in active else None
        # "Cross-modal" needs two modalities: with one, no CLC term is returned.
        self.clc_loss = clc_loss and "clc_loss" in active
        self.classifier = mlp(hidden, hidden, num_outputs, dropout)

    def forward(self, batch: Batch) -> Output:
        mask = batch.utt_mask  # (B, L)
        # Paper: the abstract does not say how order enters the attention; fixed sinusoidal
        # encodings of the utterance index are added once, after the projection.
        position = sinusoidal_positions(batch.positions, self.hidden)  # (B, L, H)
        x = {m: self.drop(self.projection[m](batch.features[m]) + position) for m in self.order}

        if self.caa is not None:  # HCFR, part 1: acoustic <-> text alignment, level by level
            for level in self.caa:
                x["audio"], x["text"] = (level["audio"](x["audio"], x["text"], mask),
                                         level["text"](x["text"], x["audio"], mask))
        if self.hfe is not None:  # HCFR, part 2
            for layer in self.hfe:
                x = layer(x, mask)

        fused = x[self.order[0]]  # (B, L, H)
        for k, m in enumerate(self.order[1:]):
            new = self.cmdf[k](x[m], fused, mask) if self.cmdf is not None else x[m]
            if self.gate is not None:
                # Paper: "a gated fusion unit adaptively weights modalities": a sigmoid gate per
                # feature between the fusion so far and the incoming modality.
                g = torch.sigmoid(self.gate[k](torch.cat([fused, new], dim=-1)))
                fused = g * fused + (1 - g) * new
            else:
                fused = (fused * (k + 1) + new) / (k + 2)  # running mean: equal weights
        logits = self.classifier(fused)  # (B, L, C)

        aux = {}
        if self.training and self.clc_loss:
            # Paper: the CLC loss is said to align features; it reads the refined per-modality
            # features (after CAA and HFE), those the cascade fuses.
            reps = {m: x[m][mask] for m in self.order}  # (N, H)
            aux["clc"] = cross_modal_label_contrastive(reps, batch.labels[mask], self.temperature)
        return Output(logits, aux)


MODELS.register("hrdf_mer", HRDFMER)
MODELS.register("hrdf_mer_tiny", partial(HRDFMER, hidden=16, heads=2, caa_layers=1, hfe_layers=1),
                tiny=True)
