"""Golden-number test: deterministic init, fixed input, logits pinned per model (see golden_models.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from golden_models import golden, tiny_models

GOLDEN = Path(__file__).parent / "golden" / "models.json"
PINNED = json.loads(GOLDEN.read_text())


def test_every_tiny_model_is_pinned():
    assert sorted(PINNED) == tiny_models(), "run: python scripts/make_golden.py"


@pytest.mark.parametrize("name", tiny_models())
def test_golden_numbers(name):
    if name not in PINNED:
        pytest.fail(f"{name} has no golden numbers: python scripts/make_golden.py")
    now = golden(name)
    hint = (f"{name} moved: if the change is meant to move it, run "
            f"`python scripts/make_golden.py {name}` and say so in the commit")
    assert now["parameters"] == PINNED[name]["parameters"], hint
    torch.testing.assert_close(torch.tensor(now["logits"]), torch.tensor(PINNED[name]["logits"]),
                               atol=2e-4, rtol=1e-4, msg=hint)
