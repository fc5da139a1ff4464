"""The contract between a model and the training loop.

A model is an ``nn.Module`` subclass of ``MerModel``. Its constructor takes ``dims`` (the
feature dimension of each modality it receives: any non-empty subset of audio / text /
vision), ``num_outputs`` (classes, or 1 for regression) and keyword hyperparameters, among
them its ablation switches (bools named after the paper's components, listed in
``components``). ``forward(batch)`` returns an ``Output``: per-utterance predictions and a
dict of extra training losses, which the loop adds with weights from the recipe
(``train.aux_weights``, default 1.0) and knows nothing else about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from merbench.data.batching import Batch
from merbench.ranges import Range


@dataclass
class Output:
    """``logits``: ``(B, C)`` at utterance level, ``(B, L, C)`` at dialogue level; C = 1 for
    regression. ``aux_loss``: named scalar losses, only in training mode."""

    logits: torch.Tensor
    aux_loss: dict[str, torch.Tensor] = field(default_factory=dict)


class MerModel(nn.Module):
    """Base class: declares what the model takes; holds no layers itself."""

    # "utterance": batches of independent utterances; "dialogue": padded whole dialogues.
    # An instance may set ``self.level`` in its constructor (e.g. HFF's GRU time axis).
    level: str = "utterance"
    # "vectors": one vector per utterance and modality; "frames": frame sequences + masks.
    inputs: ClassVar[str] = "vectors"
    # Ablation switches (constructor bool arguments), named after the paper's components.
    components: ClassVar[tuple[str, ...]] = ()
    # Ranges of constructor arguments whose meaning departs from merbench.ranges' naming
    # convention (e.g. ``{"heads": NON_NEGATIVE}`` where 0 picks a default).
    arg_ranges: ClassVar[dict[str, Range]] = {}

    @classmethod
    def active_components(cls, modalities: Sequence[str]) -> tuple[str, ...]:
        """The switches that build something with these modalities (default: all), in
        ``components`` order. Turning off any other one builds the same model, so ``ablate``
        trains it once; a run whose recipe has one of the others on records it as
        ``model.inactive_components`` and tables mark it (it is not the paper's model).

        A model that overrides this builds its layers from it (``"x" in active``), so the
        declaration and the constructor cannot drift; tests/test_components.py checks it for
        every registered model and modality subset."""
        return cls.components

    def __init__(self, dims: dict[str, int], num_outputs: int) -> None:
        super().__init__()
        if not dims:
            raise ValueError("a model needs at least one modality")
        self.dims = dict(dims)
        self.modalities = list(dims)
        self.num_outputs = num_outputs

    def forward(self, batch: Batch) -> Output:  # pragma: no cover - abstract
        raise NotImplementedError
