"""HFF: Hierarchical Feature Fusion (Xie, Zhou and Zhu, Journal of Computers 36(2), 2025).

No official code is public; every default follows the paper's section 3 and 4.1 (128-d shared
space, 4 attention layers of 8 heads, feed-forward 4x, dropout 0.1, classifier dropout 0.3).
Where the paper is silent, a ``Paper:`` comment says what was chosen; docs/models/hff.md lists
the same choices for users.

Three fusion levels, in order:
1. Preliminary fusion: per-modality projection to the shared space and alignment (Eq. 16),
   dynamic modality weights (Eq. 17-18), Bayesian uncertainty weighting (Eq. 19-20).
2. Multi-head attention over the fused sequence with the uncertainty-weighted features as
   residual (Eq. 21-23), stacked as a Transformer encoder.
3. GRU over the time axis with attention pooling over time steps (Eq. 24-28), then an MLP
   classifier (Eq. 29-31).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence
from functools import partial
from typing import ClassVar, Literal, get_args

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from merbench.data.batching import Batch
from merbench.models._blocks import masked_mean, mlp
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS

TIME_AXES = ("dialogue", "frames")
Objective = Literal["merbench", "paper"]
OBJECTIVES = get_args(Objective)
# Paper: no initialisation is given for the Bayesian head. Its log-variances start at -2
# (sigma^2 ~ 0.14): at the prior's 0 the sample of Eq. 20 is as large as the features.
INIT_LOG_VAR = -2.0


@dataclass
class Fusion:
    """Level 1's output: ``f0`` (Eq. 18) and ``f1`` (Eq. 20) ``(B, S, H)``; with uncertainty,
    Eq. 19's normalised weights ``(B, S, M)`` and, in training, the modality Gaussians
    (means ``(B, S, M, H)``, log-variances ``(B, S, M, 1)``) for the variational losses."""

    f0: torch.Tensor
    f1: torch.Tensor
    weights: torch.Tensor | None = None
    posterior: tuple[torch.Tensor, torch.Tensor] | None = None


class AudioCNN(nn.Module):
    """Eq. 6-8: 1-D convolutions over MFCC frames, max pooling over time, a linear layer."""

    def __init__(self, d_in: int, channels: int, d_out: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(d_in, channels, 3, padding=1),
                                    nn.Conv1d(channels, channels, 3, padding=1)])
        self.fc = nn.Linear(channels, d_out)

    def frames(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-frame features ``(N, T, D) -> (N, T, d_out)``; padded frames stay zero."""
        keep = mask.unsqueeze(1).to(x.dtype)  # (N, 1, T)
        h = x.transpose(1, 2) * keep  # (N, D, T)
        for conv in self.convs:
            # Zeroing padded frames after each layer keeps them out of valid frames' windows.
            h = torch.relu(conv(h)) * keep  # (N, C, T)
        return h.transpose(1, 2)  # (N, T, C)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.frames(x, mask)  # (N, T, C)
        pooled = h.masked_fill(~mask.unsqueeze(-1), torch.finfo(h.dtype).min).amax(1)  # Eq. 7
        pooled = torch.where(mask.any(1, keepdim=True), pooled, torch.zeros_like(pooled))
        return self.fc(pooled)  # (N, d_out), Eq. 8


class FixedWidthAttention(nn.Module):
    """Multi-head self-attention with a fixed per-head width, so any head count fits."""

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.query, self.key, self.value = (nn.Linear(dim, inner) for _ in range(3))  # Eq. 21
        self.out = nn.Linear(inner, dim)  # back to the model width
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        split = lambda t: t.view(b, s, self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))  # (B, h, S, d)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, h, S, S), Eq. 22
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        attended = self.drop(scores.softmax(-1)) @ v  # (B, h, S, d)
        return self.out(attended.transpose(1, 2).reshape(b, s, -1))  # (B, S, H)


class FusionLayer(nn.Module):
    """The rest of one Transformer encoder layer around a given attention sub-layer.

    The attention (Eq. 21-23) lives in ``HFF.attention`` so that ``attention: false`` removes
    exactly it: this layer's two norms and feed-forward block stay. ``pre_norm`` moves each
    LayerNorm before its sub-layer (not the paper's; see ``HFF``).
    """

    def __init__(self, dim: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Dropout(dropout),
                                          nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor, mask: torch.Tensor,
                attention: FixedWidthAttention | None) -> torch.Tensor:
        """``(B, S, H) -> (B, S, H)``: Q, K, V from ``x``, the attention added to ``residual``."""
        if self.pre_norm:
            if attention is not None:
                residual = residual + self.drop(attention(self.norm1(x), mask))  # Eq. 23
            return residual + self.drop(self.feed_forward(self.norm2(residual)))
        attended = residual if attention is None else residual + self.drop(attention(x, mask))  # Eq. 23
        x = self.norm1(attended)
        return self.norm2(x + self.drop(self.feed_forward(x)))


class TemporalGRU(nn.Module):
    """Eq. 24-28: a bidirectional GRU over the valid steps, then attention pooling over them."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        # Paper: the GRU's size and direction are not given; H / 2 per direction keeps the
        # output at the model width, and both directions match the offline setting of the
        # baselines of Table 3 (DialogueRNN, DialogueGCN and COGMEN all read future turns).
        self.gru = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)
        # beta_t; no bias on the last layer: a softmax over time ignores a shift shared by all steps.
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = mask.sum(1).clamp(min=1).cpu()
        # Packing keeps padded steps out of both directions: no state crosses into padding.
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])
        h = self.drop(h)  # (B, S, H)
        scores = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, S)
        pooled = (scores.softmax(-1).unsqueeze(-1) * h).sum(1)  # (B, H), Eq. 28
        return h, pooled


def precision_weights(log_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 19: each modality's precision w = 1 / (sigma^2 + eps) and the weights w / sum(w)
    over the modality axis (-2): ``(..., M, 1)`` each."""
    precision = 1.0 / (log_var.exp() + 1e-6)
    return precision, precision / precision.sum(-2, keepdim=True)


class UncertaintyWeighting(nn.Module):
    """Eq. 19-20: a variational Gaussian per modality, fused by precision.

    Each modality's shared-space feature ``(B, S, H)`` gives a mean ``(B, S, H)`` and one
    log-variance ``(B, S, 1)``, so Eq. 19's weight w = 1 / (sigma^2 + eps) is one number per
    step and modality.

    Paper: section 3.2 models "the distribution of each modality feature" with "a Bayesian
    Neural Network" and gives no loss for it (Eq. 31 is the cross-entropy alone). Without one
    nothing ties a variance to its modality's reliability and the variances never move
    (issue 10). merbench trains each modality's Gaussian as a variational information
    bottleneck (Alemi et al., 2017): a reparameterised sample (the form of Eq. 20) is
    classified by one shared linear layer (aux loss ``modality_nll``) and the Gaussian pays a
    KL term to N(0, I) (aux loss ``kl``, per dimension). An input that tells nothing about the
    emotion (a corrupted modality) cannot lower its classification loss, so its cheapest
    posterior is the prior: a large variance and a small weight in Eq. 19.
    ``variational=False`` (HFF's ``objective: paper``) builds no classifier: the heads are
    used as above and ``losses`` is never called.
    """

    def __init__(self, modalities: list[str], dim: int, num_outputs: int, variational: bool = True) -> None:
        super().__init__()
        self.mean = nn.ModuleDict({m: nn.Linear(dim, dim) for m in modalities})
        # Paper: the network's layers are not given. A log-variance is a non-linear function
        # of the feature (how far it lies from what any emotion explains, in both directions):
        # one hidden ReLU layer, whose pairs of units can measure a distance (tanh is odd).
        self.log_var = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1)) for m in modalities
        })
        for head in self.log_var.values():
            nn.init.constant_(head[-1].bias, INIT_LOG_VAR)
        # The shared classifier of ``modality_nll``; the paper's objective has no use for it.
        self.classifier = nn.Linear(dim, num_outputs) if variational else None

    def forward(self, modalities: list[str], features: list[torch.Tensor], reduced: list[torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aligned ``features`` and the ``reduced`` (Eq. 16, before alignment) ones, ``M x (B, S, H)``
        -> means ``(B, S, M, H)`` and log-variances ``(B, S, M, 1)``. The variance reads the
        features before alignment: alignment's LayerNorm removes their scale, a sign of noise."""
        means = torch.stack([self.mean[m](z) for m, z in zip(modalities, features)], -2)
        log_vars = torch.stack([self.log_var[m](z) for m, z in zip(modalities, reduced)], -2)
        return means, log_vars.clamp(-8.0, 8.0)

    def losses(self, labels: torch.Tensor, values: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor,
               mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The variational terms over the valid steps ``mask`` ``(B, S)``; ``labels`` and
        ``values`` ``(B, S)``, each step's utterance's (training only)."""
        mean, log_var = mean[mask], log_var[mask]  # (N, M, H), (N, M, 1)
        kl = 0.5 * (mean.pow(2).mean(-1) + log_var.exp().squeeze(-1) - 1.0 - log_var.squeeze(-1))  # (N, M)
        sample = mean + torch.randn_like(mean) * (0.5 * log_var).exp()  # (N, M, H), reparameterised
        logits = self.classifier(sample)  # (N, M, C)
        n_mod = logits.shape[1]
        if logits.shape[-1] == 1:  # regression: L1 to the value, as the main loss
            values = values[mask].unsqueeze(1).expand(-1, n_mod)  # (N, M)
            keep = ~torch.isnan(values)
            nll = (logits.squeeze(-1) - values).abs()[keep].mean() if keep.any() else logits.sum() * 0.0
        else:
            labels = labels[mask].unsqueeze(1).expand(-1, n_mod)  # (N, M)
            nll = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-1) \
                if (labels >= 0).any() else logits.sum() * 0.0
        return {"kl": kl.mean(), "modality_nll": nll}


def resample_frames(x: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    """Linearly resample each sequence's valid (leading) frames to ``steps`` points.

    ``(N, T, D)`` with mask ``(N, T)`` -> ``(N, steps, D)``; step s reads the centre of the
    s-th of ``steps`` equal segments, so one frame gives ``steps`` copies of itself.
    """
    n = mask.sum(1).clamp(min=1).to(x.dtype).unsqueeze(1)  # (N, 1)
    centres = (torch.arange(steps, device=x.device, dtype=x.dtype) + 0.5) / steps  # (S,)
    pos = torch.minimum((centres * n - 0.5).clamp(min=0), n - 1)  # (N, S)
    lo = pos.floor()
    hi = torch.minimum(lo + 1, n - 1)
    weight = (pos - lo).unsqueeze(-1)  # (N, S, 1)
    take = lambda idx: x.gather(1, idx.long().unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # noqa: E731
    return take(lo) * (1 - weight) + take(hi) * weight


class HFF(MerModel):
    """Hierarchical Feature Fusion: weighted and uncertainty-aware fusion, attention, GRU.

    Paper: Xie, Zhou and Zhu, "Hierarchical Feature Fusion (HFF)" model for multimodal
    emotion recognition, Journal of Computers 36(2), 2025 (no official code).

    Input (``inputs = "frames"``): ``features[m]`` ``(B, L, T, D_m)`` with ``masks[m]``
    ``(B, L, T)`` and ``utt_mask`` ``(B, L)`` when ``time_axis="dialogue"``; ``(B, T, D_m)``
    with ``(B, T)`` masks when ``time_axis="frames"``. Utterance vectors arrive as one-frame
    sequences. Output: logits ``(B, L, C)`` (dialogue) or ``(B, C)`` (frames).
    """

    inputs: ClassVar[str] = "frames"
    components: ClassVar[tuple[str, ...]] = (
        "attention", "dynamic_weighting", "temporal", "alignment", "uncertainty")
    title: ClassVar[str] = "HFF (full model)"
    component_titles: ClassVar[dict[str, str]] = {
        "attention": "Without attention mechanism",
        "dynamic_weighting": "Without dynamic weighting",
        "temporal": "Without temporal modeling",
        "alignment": "Without cross-modality alignment",
        # Not a row of the paper's Table 4: merbench's own switch for Eq. 19-20.
        "uncertainty": "Without uncertainty weighting",
    }

    @classmethod
    def active_components(cls, modalities: Sequence[str]) -> tuple[str, ...]:
        """With one modality there is nothing to weigh: Eq. 17-20 build nothing."""
        if len(modalities) > 1:
            return cls.components
        return tuple(c for c in cls.components if c not in ("dynamic_weighting", "uncertainty"))

    def __init__(self, dims: dict[str, int], num_outputs: int, *, hidden: int = 128,
                 heads: int = 8, head_dim: int = 16, layers: int = 4, dropout: float = 0.1,
                 classifier_dropout: float = 0.3, time_axis: str = "dialogue",
                 audio_cnn: bool = True, cnn_channels: int = 64, frame_steps: int = 8,
                 attention: bool = True, dynamic_weighting: bool = True, temporal: bool = True,
                 alignment: bool = True, uncertainty: bool = True, pre_norm: bool = False,
                 identity_init: bool = True, objective: Objective = "merbench") -> None:
        super().__init__(dims, num_outputs)
        if heads < 1:
            raise ValueError(f"heads must be at least 1, got {heads}")
        if time_axis not in TIME_AXES:
            raise ValueError(f"time_axis must be one of {TIME_AXES}, got {time_axis!r}")
        if hidden % 2:
            raise ValueError(f"hidden must be even (two GRU directions of hidden / 2), got {hidden}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.objective = objective
        self.time_axis = time_axis
        self.level = "dialogue" if time_axis == "dialogue" else "utterance"
        self.frame_steps = frame_steps

        # Level 1: Eq. 6-8 for speech frames, Eq. 16 for every modality.
        self.audio_encoder = (AudioCNN(dims["audio"], cnn_channels, hidden)
                              if audio_cnn and "audio" in dims else None)
        in_dims = {m: hidden if m == "audio" and self.audio_encoder is not None else d
                   for m, d in dims.items()}
        self.projection = nn.ModuleDict({m: nn.Linear(d, hidden) for m, d in in_dims.items()})
        # Paper: the first fusion layer does "dimensionality reduction and the initial
        # alignment" but gives one Linear (Eq. 16) for both. merbench keeps Eq. 16 as the
        # reduction and adds a learned alignment per modality (LayerNorm puts every modality
        # on one scale, Linear maps it into the shared space): the "cross-modality alignment"
        # of Table 4. Off: the projections are fused as they are.
        self.alignment = nn.ModuleDict({
            m: nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden)) for m in dims
        }) if alignment else None
        active = self.active_components(list(dims))
        # Eq. 17: W_dyn over the concatenated projections. One modality: softmax over one
        # weight is constant, so nothing is built. Off: equal weights 1 / M.
        self.dynamic_weighting = (nn.Linear(hidden * len(dims), len(dims))
                                  if dynamic_weighting and "dynamic_weighting" in active else None)
        # Eq. 19-20: a variational Gaussian per modality, fused by its precision. Off: f1 = f0.
        # Paper: with one modality Eq. 19's weight is always 1 (nothing to weigh), so, as with
        # dynamic weighting, nothing is built.
        # Paper: Eq. 31 is the whole objective, the cross-entropy of the final classifier; it
        # gives the Bayesian head of Eq. 19-20 no loss of its own. merbench's default
        # (``objective: merbench``) adds the head's variational terms (aux losses ``kl`` and
        # ``modality_nll``, see ``UncertaintyWeighting``): under Eq. 31 alone a variance learns
        # whatever helps the final classifier, and nothing ties it to its modality's reliability
        # (issue 10: an earlier head trained so kept the weights at 1 / M; docs/probes.md
        # measures both objectives).
        # ``objective: paper`` keeps the head and uses it in the forward pass exactly as the
        # default does (Eq. 19's weights, Eq. 20's sample in training), returns no aux loss, and
        # builds no ``modality_nll`` classifier: the variances learn from the cross-entropy alone.
        self.uncertainty = (UncertaintyWeighting(list(dims), hidden, num_outputs, objective == "merbench")
                            if uncertainty and "uncertainty" in active else None)
        self.drop = nn.Dropout(dropout)

        # Level 2: Eq. 21-23, a 4-layer encoder. Paper: Table 5 runs 4, 6, 8 and 10 heads on a
        # 128-d space with "all other hyperparameters constant"; 6 and 10 do not divide 128, so
        # each head keeps a fixed width (head_dim = 128 / 8) and an output projection maps the
        # heads * head_dim concatenation back to the model width. Off: only the attention
        # sub-layers go (f2 = f0 + f1 enters the encoder); norms and feed-forward blocks stay.
        self.attention = nn.ModuleList([
            FixedWidthAttention(hidden, heads, head_dim, dropout) for _ in range(layers)
        ]) if attention else None
        self.encoder = nn.ModuleList([FusionLayer(hidden, dropout, pre_norm) for _ in range(layers)])
        # A pre-norm stack leaves its sum unnormalised: one LayerNorm closes it.
        self.final_norm = nn.LayerNorm(hidden) if pre_norm and layers else None
        if identity_init:
            # Paper: no initialisation is given. Zero output layers in every attention and
            # feed-forward sub-layer (Fixup / ReZero's idea) start the encoder as the identity up
            # to its LayerNorms: Eq. 23's residual f1 passes straight to the GRU, and each
            # sub-layer grows in from there. With torch's default initialisation
            # (``identity_init: false``) the 4-layer post-norm stack kept HFF at the class prior
            # for its first epochs on the IEMOCAP transcripts, and early stopping on the noisy
            # validation curve cut runs short (docs/models/hff.md, Training).
            for layer in list(self.attention or []) + list(self.encoder):
                last = layer.out if isinstance(layer, FixedWidthAttention) else layer.feed_forward[-1]
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)

        # Level 3: Eq. 24-28. Off: no GRU (identity) and a masked mean instead of Eq. 28.
        self.temporal = TemporalGRU(hidden, dropout) if temporal else None
        # Eq. 29-31. Dialogue axis: each utterance's state beside the dialogue summary of Eq. 28.
        classifier_in = 2 * hidden if time_axis == "dialogue" else hidden
        self.classifier = mlp(classifier_in, hidden, num_outputs, classifier_dropout, layers=2)

    # --- level 1 ---------------------------------------------------------------------------

    def _utterance_vectors(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Dialogue axis: one vector per utterance and modality, ``(B, L, D_m')``."""
        utt_mask = batch.utt_mask
        vectors = {}
        for m in self.modalities:
            x, mask = batch.features[m][utt_mask], batch.masks[m][utt_mask]  # (N, T, D), (N, T)
            if m == "audio" and self.audio_encoder is not None:
                v = self.audio_encoder(x, mask)  # (N, H)
            else:
                # Paper: text is a sentence vector (Eq. 12) and vision frames are averaged
                # (Eq. 15 and "this fusion reduces random noise between frames").
                v = masked_mean(x, mask)  # (N, D)
            full = v.new_zeros(*utt_mask.shape, v.shape[-1])  # (B, L, D')
            full[utt_mask] = v
            vectors[m] = full
        return vectors, utt_mask

    def _frame_steps(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Frames axis: every modality on a common grid of ``frame_steps`` steps, ``(B, S, D_m')``."""
        steps = {}
        for m in self.modalities:
            x, mask = batch.features[m], batch.masks[m]  # (B, T, D), (B, T)
            if m == "audio" and self.audio_encoder is not None:
                # Paper: Eq. 7 pools over the whole utterance; on the frames axis the pooling is
                # the resampling below, so the CNN keeps its time axis and Eq. 8 acts per frame.
                x = self.audio_encoder.fc(self.audio_encoder.frames(x, mask))  # (B, T, H)
            # Paper: Eq. 17-18 fuse modalities step by step but the paper does not say how
            # streams of different frame rates share steps; each is resampled to one grid.
            steps[m] = resample_frames(x, mask, self.frame_steps)  # (B, S, D')
        first = steps[self.modalities[0]]
        return steps, torch.ones(first.shape[:2], dtype=torch.bool, device=first.device)

    def _fuse(self, inputs: dict[str, torch.Tensor]) -> Fusion:
        """Eq. 16-20: ``f0`` (dynamic weights) and ``f1`` (uncertainty weights), ``(B, S, H)``."""
        reduced, projected = [], []
        for m in self.modalities:
            z = self.projection[m](inputs[m])  # (B, S, H), Eq. 16
            reduced.append(z)
            if self.alignment is not None:
                z = self.alignment[m](z)
            projected.append(self.drop(z))
        stacked = torch.stack(projected, dim=-2)  # (B, S, M, H)
        if self.dynamic_weighting is not None:
            alpha = self.dynamic_weighting(torch.cat(projected, dim=-1)).softmax(-1)  # (B, S, M)
            f0 = (alpha.unsqueeze(-1) * stacked).sum(-2)  # Eq. 18
        else:
            f0 = stacked.mean(-2)
        if self.uncertainty is None:
            return Fusion(f0, f0)
        mean, log_var = self.uncertainty(self.modalities, projected, reduced)  # (B, S, M, H), (B, S, M, 1)
        # Paper: Eq. 19 gives per-modality weights w = 1 / (sigma^2 + eps) and Eq. 20 a sample
        # mu + eps * sigma without saying how they combine; the precision-weighted product of the
        # modality Gaussians gives both: mu = sum(w mu) / sum(w), sigma^2 = 1 / sum(w).
        precision, weights = precision_weights(log_var)  # (B, S, M, 1) each, Eq. 19
        fused_mean = (weights * mean).sum(-2)  # (B, S, H)
        if not self.training:
            return Fusion(f0, fused_mean, weights.squeeze(-1))  # the mean at evaluation
        fused_std = precision.sum(-2).rsqrt()  # (B, S, 1)
        f1 = fused_mean + torch.randn_like(fused_mean) * fused_std  # Eq. 20
        return Fusion(f0, f1, weights.squeeze(-1), (mean, log_var))

    def _inputs(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if self.time_axis == "dialogue":
            return self._utterance_vectors(batch)  # (B, L, D'), (B, L)
        return self._frame_steps(batch)  # (B, S, D'), (B, S)

    @torch.no_grad()
    def modality_weights(self, batch: Batch) -> torch.Tensor:
        """Eq. 19's normalised weights per step and modality (order ``self.modalities``), in
        evaluation mode: ``(B, S, M)``, summing to 1 over M. Needs ``uncertainty``."""
        if self.uncertainty is None:
            raise ValueError("modality_weights needs uncertainty: true and at least two modalities")
        was_training = self.training
        self.eval()
        inputs, _ = self._inputs(batch)
        weights = self._fuse(inputs).weights
        self.train(was_training)
        return weights

    # --- levels 2 and 3 ----------------------------------------------------------------------

    def forward(self, batch: Batch) -> Output:
        inputs, mask = self._inputs(batch)
        fusion = self._fuse(inputs)  # f0, f1: (B, S, H) each
        if self.attention is None:
            x = residual = fusion.f0 + fusion.f1  # Eq. 23 with the attention replaced by its input
        else:
            x, residual = fusion.f0, fusion.f1
        for i, layer in enumerate(self.encoder):
            x = residual = layer(x, residual, mask, None if self.attention is None else self.attention[i])
        if self.final_norm is not None:
            x = self.final_norm(x)
        if self.temporal is not None:
            states, summary = self.temporal(x, mask)  # (B, S, H), (B, H)
        else:
            states, summary = x, masked_mean(x, mask)
        aux = {}
        if fusion.posterior is not None and self.objective == "merbench":  # training only
            # On the frames axis every step belongs to the batch's one utterance: (B,) -> (B, S).
            per_step = (lambda t: t) if self.time_axis == "dialogue" else (lambda t: t.unsqueeze(1).expand_as(mask))
            aux = self.uncertainty.losses(per_step(batch.labels), per_step(batch.values), *fusion.posterior, mask)
        if self.time_axis == "frames":
            return Output(self.classifier(summary), aux)  # (B, C)
        context = summary.unsqueeze(1).expand_as(states)  # (B, L, H)
        return Output(self.classifier(torch.cat([states, context], dim=-1)), aux)  # (B, L, C)


MODELS.register("hff", HFF)
MODELS.register("hff_tiny", partial(HFF, hidden=16, heads=2, head_dim=8, layers=1,
                                    cnn_channels=8, frame_steps=4), tiny=True)
