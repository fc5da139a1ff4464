"""Golden numbers: every registered tiny model, deterministic init, one fixed input.

``python scripts/make_golden.py`` writes ``tests/golden/models.json`` from :func:`golden`;
``tests/test_golden.py`` recomputes it and compares, so no change moves a model silently.
Regenerate only for a change that is meant to move a model, and say so in the commit.
"""

from __future__ import annotations

import torch

from merbench.data.batching import Batch
from merbench.models.build import build_model
from merbench.registry import MODELS

DIMS = {"audio": 6, "text": 8, "vision": 5}
DIALOGUES, LENGTH, FRAMES = 2, 5, 4


def golden_batch(level: str, inputs: str) -> Batch:
    """Two dialogues of five utterances (the second one padded after three), from a fixed generator."""
    g = torch.Generator().manual_seed(1234)
    B, L, T = DIALOGUES, LENGTH, FRAMES
    lengths = torch.tensor([5, 3])
    utt_mask = torch.arange(L)[None, :] < lengths[:, None]  # (B, L)
    frame_len = torch.randint(1, T + 1, (B, L), generator=g)
    frame_mask = torch.arange(T)[None, None, :] < frame_len[..., None]  # (B, L, T)
    features, masks = {}, {}
    for m, d in DIMS.items():
        x = torch.randn(B, L, T, d, generator=g)
        if inputs == "frames":
            features[m], masks[m] = x * frame_mask[..., None], frame_mask  # (B, L, T, D)
        else:
            features[m] = x.mean(2)  # (B, L, D)
    labels = torch.randint(0, 6, (B, L), generator=g).masked_fill(~utt_mask, -1)
    values = torch.randn(B, L, generator=g).masked_fill(~utt_mask, float("nan"))
    speakers = (torch.arange(L)[None, :] % 2).expand(B, L).clone()
    positions = torch.arange(L)[None, :].expand(B, L).clone()
    index = torch.arange(B * L).view(B, L).masked_fill(~utt_mask, -1)
    if level == "dialogue":
        return Batch(features, masks, labels, values, speakers, positions, utt_mask, index)
    flat = utt_mask.view(-1)  # utterance level: the real utterances, one per row
    return Batch({m: x.flatten(0, 1)[flat] for m, x in features.items()},
                 {m: x.flatten(0, 1)[flat] for m, x in masks.items()},
                 labels.view(-1)[flat], values.view(-1)[flat], speakers.reshape(-1)[flat],
                 positions.reshape(-1)[flat], None, index.view(-1)[flat])


def tiny_models() -> list[str]:
    return sorted(e.name for e in MODELS.entries() if e.meta.get("tiny"))


def golden(name: str) -> dict:
    """Parameter count and the eval-mode logits of the fixed input, rounded to 1e-5."""
    torch.manual_seed(0)
    model = build_model(name, dict(DIMS), 6)
    model.eval()
    batch = golden_batch(model.level, type(model).inputs)
    torch.manual_seed(0)
    with torch.no_grad():
        logits = batch.valid(model(batch).logits)  # (N, 6)
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "logits": [[round(float(v), 5) for v in row] for row in logits]}
