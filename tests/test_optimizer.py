"""train.optimizer: adam (L2 in the gradient, as torch.optim.Adam) and adamw (decoupled decay)."""

from __future__ import annotations

import pytest
import torch

from merbench.errors import MerbenchError
from merbench.recipe import TrainOptions, validate
from merbench.train import build_optimizer


def _trajectory(make, steps=50):
    """Minimise (w - 3)^2 from w = 1 with a large weight decay; the values of w after each step."""
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = make([w])
    out = []
    for _ in range(steps):
        opt.zero_grad()
        ((w - 3.0) ** 2).sum().backward()
        opt.step()
        out.append(w.item())
    return out


@pytest.mark.parametrize("name, reference", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_optimizer_follows_torchs_own_trajectory(name, reference):
    cfg = TrainOptions(optimizer=name, lr=0.05, weight_decay=0.5)
    ours = _trajectory(lambda p: build_optimizer(cfg, p))
    theirs = _trajectory(lambda p: reference(p, lr=0.05, weight_decay=0.5))
    assert ours == theirs


def test_adam_and_adamw_decay_differently():
    adam = _trajectory(lambda p: build_optimizer(TrainOptions(optimizer="adam", lr=0.05, weight_decay=0.5), p), steps=400)
    adamw = _trajectory(lambda p: build_optimizer(TrainOptions(optimizer="adamw", lr=0.05, weight_decay=0.5), p), steps=400)
    # Coupled L2 minimises (w - 3)^2 + 0.25 w^2: w -> 2.4. Decoupled decay settles elsewhere.
    assert abs(adam[-1] - 2.4) < 0.05
    assert abs(adamw[-1] - adam[-1]) > 0.1


def test_recipe_optimizer_default_and_unknown():
    recipe = {"dataset": {"name": "synthetic"}, "model": {"name": "mlp"}}
    assert validate(recipe, "r.yaml")["train"]["optimizer"] == "adamw"
    assert validate({**recipe, "train": {"optimizer": "adam"}}, "r.yaml")["train"]["optimizer"] == "adam"
    with pytest.raises(MerbenchError, match=r"train.optimizer: expected one of adam, adamw, got 'adamm'.*did you mean 'adam'"):
        validate({**recipe, "train": {"optimizer": "adamm"}}, "r.yaml")
