"""DialogueGCN as the authors' code builds it, and merbench's ``nodal_residual`` option.

docs/models/dialoguegcn.md ("Nodal attention and the residual option") states what these
tests check: on dialogues whose labels alternate, the faithful model (tanh-bounded nodal
attention, classifier on the pool only) starts from one prediction per dialogue and is still
there after 50 Adam steps, while ``nodal_residual: true`` tells the labels apart.
"""

from __future__ import annotations

import pytest
import torch

from merbench.data.batching import Batch
from merbench.errors import MerbenchError
from merbench.models.build import build_model
from merbench.models.dialoguegcn import WeightedRGCN

SMALL = dict(context_size=8, graph_size=8, hidden=8, num_bases=4, max_speakers=2, dropout=0.0)


def alternating(n: int = 8, length: int = 12, seed: int = 0) -> Batch:
    """Dialogues whose labels alternate 0, 1, 0, ...; each utterance's vector shows its label
    plainly (one-hot plus noise), so the task needs no context at all. Speakers change every
    two utterances, so they do not give the label away."""
    gen = torch.Generator().manual_seed(seed)
    labels = (torch.arange(length)[None] + torch.randint(0, 2, (n, 1), generator=gen)) % 2  # (n, L)
    x = torch.nn.functional.one_hot(labels, 4).float() + 0.3 * torch.randn(n, length, 4, generator=gen)
    speakers = (torch.arange(length) // 2 % 2).expand(n, length)
    return Batch({"text": x}, {}, labels, torch.zeros(n, length), speakers,
                 torch.arange(length).expand(n, length), torch.ones(n, length, dtype=torch.bool))


def trained(steps: int, **options) -> tuple[torch.nn.Module, float]:
    torch.manual_seed(0)
    model = build_model("dialoguegcn", {"text": 4}, 2, **SMALL, **options)
    train = alternating()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(train).logits.flatten(0, 1), train.labels.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), loss.item()


def predictions(model: torch.nn.Module) -> tuple[float, float]:
    """Mean distinct predicted classes per dialogue, and accuracy, on fresh alternating dialogues."""
    test = alternating(seed=1)
    with torch.no_grad():
        pred = model(test).logits.argmax(-1)  # (n, L)
    return sum(len(set(row.tolist())) for row in pred) / len(pred), (pred == test.labels).float().mean().item()


def test_faithful_nodal_attention_gives_one_prediction_per_dialogue():
    # Untrained: tanh keeps every score in [-1, 1], so each pool is close to the dialogue's mean
    # and all utterances of a dialogue get nearly the same logits.
    torch.manual_seed(0)
    model = build_model("dialoguegcn", {"text": 4}, 2, **SMALL).eval()
    with torch.no_grad():
        logits = model(alternating()).logits  # (n, L, 2)
    within = (logits - logits.mean(1, keepdim=True)).abs().max()
    assert within < 0.1 * logits.abs().max()
    # After 50 Adam steps it still predicts one class per dialogue, at chance.
    model, loss = trained(50)
    distinct, accuracy = predictions(model)
    assert distinct == 1.0 and accuracy == pytest.approx(0.5)
    assert loss > 0.65  # ln 2 = 0.693: the loss has not left chance


def test_nodal_residual_tells_the_alternating_labels_apart():
    model, loss = trained(50, nodal_residual=True)
    distinct, accuracy = predictions(model)
    assert distinct == 2.0 and accuracy >= 0.95
    assert loss < 0.1


def test_nodal_residual_needs_nodal_attention():
    with pytest.raises(MerbenchError, match="nodal_residual"):
        build_model("dialoguegcn", {"text": 4}, 2, nodal_attention=False, nodal_residual=True)


def test_a_dialogue_longer_than_max_seq_len_is_a_clear_error():
    model = build_model("dialoguegcn", {"text": 4}, 2, **SMALL, max_seq_len=10)
    with pytest.raises(MerbenchError, match="max_seq_len"):
        model(alternating(length=12))


def test_weighted_rgcn_is_a_weighted_sum_per_relation_plus_root():
    torch.manual_seed(0)
    layer = WeightedRGCN(3, 2, relations=2, num_bases=2)
    x = torch.randn(3, 3)
    edge_index = torch.tensor([[0, 1, 2], [2, 2, 0]])  # 0 -> 2, 1 -> 2, 2 -> 0
    edge_type = torch.tensor([0, 1, 1])
    weight = torch.tensor([0.25, 0.75, 1.0])
    w = torch.einsum("rb,bio->rio", layer.att, layer.basis)  # (R, in, out)
    expected = x @ layer.root + layer.bias
    expected[2] += 0.25 * x[0] @ w[0] + 0.75 * x[1] @ w[1]
    expected[0] += 1.0 * x[2] @ w[1]
    assert torch.allclose(layer(x, edge_index, edge_type, weight), expected, atol=1e-6)
    # PyG 1.x initialisation: U(-b, b) with b = 1 / sqrt(num_bases * in).
    bound = 1 / (2 * 3) ** 0.5
    assert all(p.abs().max() <= bound for p in layer.parameters())
