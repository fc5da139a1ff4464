"""Turn one split of a corpus into batches at utterance or dialogue level.

Features of a split are stacked once into flat tensors (utterances in dialogue order), so a
batch is an index lookup. A model that takes vectors gets frame sequences mean-pooled over
their valid frames; a model that takes frames gets a vector as a one-frame sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Iterator

import numpy as np
import torch

from merbench.data.types import Corpus, Dialogue


@dataclass
class Batch:
    """Model input.

    Utterance level: ``features[m]`` is ``(B, D)``, or ``(B, T, D)`` with ``masks[m]`` ``(B, T)``.
    Dialogue level: a leading dialogue axis, ``(B, L, D)`` or ``(B, L, T, D)`` with
    ``masks[m]`` ``(B, L, T)``, plus ``utt_mask`` ``(B, L)`` (True = a real utterance).
    A modality not used is absent from ``features``, never zeros. Masks are bool, True = present.
    """

    features: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    labels: torch.Tensor  # (B,) or (B, L) long, -1 = none
    values: torch.Tensor  # (B,) or (B, L) float, NaN = none
    speakers: torch.Tensor  # (B,) or (B, L) long
    positions: torch.Tensor  # (B,) or (B, L) long, index of the utterance in its dialogue
    utt_mask: torch.Tensor | None = None  # (B, L) bool, dialogue level only
    index: torch.Tensor | None = None  # (B,) or (B, L) flat utterance index in the split, -1 = pad

    @property
    def level(self) -> str:
        return "utterance" if self.utt_mask is None else "dialogue"

    def with_features(self, features: dict[str, torch.Tensor]) -> "Batch":
        """The same batch with other feature tensors (same shapes), e.g. after input dropout."""
        return replace(self, features=features)

    def to(self, device: torch.device | str) -> "Batch":
        def move(x):
            if isinstance(x, dict):
                return {k: v.to(device) for k, v in x.items()}
            return None if x is None else x.to(device)

        return Batch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})

    def valid(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten a per-utterance tensor to its real utterances: (B, L, ...) -> (N, ...)."""
        return x if self.utt_mask is None else x[self.utt_mask]


class SplitTensors:
    """One split of a corpus as flat tensors, utterances in dialogue order."""

    def __init__(self, dialogues: list[Dialogue], modalities: list[str], want_frames: bool):
        self.dialogue_ids = [d.id for d in dialogues]
        lengths = [len(d) for d in dialogues]
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.size = int(self.offsets[-1])
        self.labels = torch.as_tensor(np.concatenate([d.labels for d in dialogues]), dtype=torch.long)
        self.values = torch.as_tensor(np.concatenate([d.values for d in dialogues]), dtype=torch.float32)
        self.speakers = torch.as_tensor(np.concatenate([d.speakers for d in dialogues]), dtype=torch.long)
        self.positions = torch.as_tensor(np.concatenate([np.arange(n) for n in lengths]), dtype=torch.long)
        self.features: dict[str, torch.Tensor] = {}
        self.masks: dict[str, torch.Tensor] = {}
        for m in modalities:
            items = [x for d in dialogues for x in d.features[m]]
            if items[0].ndim == 1:
                stacked = torch.as_tensor(np.stack(items), dtype=torch.float32)  # (N, D)
                if want_frames:
                    self.features[m] = stacked[:, None, :]  # (N, 1, D)
                    self.masks[m] = torch.ones(self.size, 1, dtype=torch.bool)
                else:
                    self.features[m] = stacked
            else:
                t_max = max(x.shape[0] for x in items)
                padded = np.zeros((self.size, t_max, items[0].shape[1]), dtype=np.float32)
                mask = np.zeros((self.size, t_max), dtype=bool)
                for i, x in enumerate(items):
                    padded[i, : len(x)] = x
                    mask[i, : len(x)] = True
                feats, masks = torch.from_numpy(padded), torch.from_numpy(mask)
                if want_frames:
                    self.features[m], self.masks[m] = feats, masks  # (N, T, D), (N, T)
                else:
                    weights = masks.float().unsqueeze(-1)
                    self.features[m] = (feats * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def utterance_batch(self, idx: torch.Tensor) -> Batch:
        feats, masks = {}, {}
        for m, x in self.features.items():
            if m in self.masks:
                mask = self.masks[m][idx]
                t = int(mask.sum(1).max().item()) if len(idx) else 1
                feats[m], masks[m] = x[idx, : max(t, 1)], mask[:, : max(t, 1)]
            else:
                feats[m] = x[idx]
        return Batch(feats, masks, self.labels[idx], self.values[idx], self.speakers[idx],
                     self.positions[idx], None, idx)

    def dialogue_batch(self, dialogue_idx: list[int]) -> Batch:
        starts = self.offsets[dialogue_idx]
        lens = self.offsets[np.asarray(dialogue_idx) + 1] - starts
        l_max = int(lens.max())
        index = torch.full((len(dialogue_idx), l_max), -1, dtype=torch.long)  # (B, L)
        for b, (s, n) in enumerate(zip(starts, lens)):
            index[b, :n] = torch.arange(int(s), int(s + n))
        utt_mask = index >= 0
        safe = index.clamp(min=0)
        feats, masks = {}, {}
        for m, x in self.features.items():
            feats[m] = x[safe] * utt_mask.view(*utt_mask.shape, *([1] * (x.dim() - 1)))
            if m in self.masks:
                mask = self.masks[m][safe] & utt_mask.unsqueeze(-1)  # (B, L, T)
                t = max(int(mask.sum(-1).max().item()), 1)
                feats[m], masks[m] = feats[m][:, :, :t], mask[:, :, :t]
        pad = lambda v, fill: torch.where(utt_mask, v[safe], torch.full_like(v[safe], fill))  # noqa: E731
        return Batch(feats, masks, pad(self.labels, -1), pad(self.values, float("nan")),
                     pad(self.speakers, 0), pad(self.positions, 0), utt_mask, index)

    def batches(self, level: str, batch_size: int, generator: torch.Generator | None = None
                ) -> Iterator[Batch]:
        """Batches in order, or shuffled with ``generator`` (training)."""
        if level == "utterance":
            order = torch.randperm(self.size, generator=generator) if generator else torch.arange(self.size)
            for i in range(0, self.size, batch_size):
                yield self.utterance_batch(order[i : i + batch_size])
        else:
            n = len(self.dialogue_ids)
            order = torch.randperm(n, generator=generator).tolist() if generator else list(range(n))
            for i in range(0, n, batch_size):
                yield self.dialogue_batch(order[i : i + batch_size])


def split_tensors(corpus: Corpus, split: str, want_frames: bool) -> SplitTensors:
    return SplitTensors(corpus.split(split), corpus.modalities, want_frames)
