"""Checks every dialogue-level model gets: context is used, nothing leaks across padding or
dialogues, and a model that claims to be causal never reads the future.

Parametrised over the registry's tiny variants whose instance level is "dialogue", so a new
conversational model (or a dialogue-level variant of an utterance model) is picked up.
"""

from __future__ import annotations

import pytest
import torch

from merbench.data.batching import SplitTensors
from merbench.models.build import build_model, model_class
from merbench.registry import DATASETS, MODELS

DIMS = {"audio": 6, "text": 8, "vision": 5}


def _dialogue_models() -> list[str]:
    names = []
    for entry in MODELS.entries():
        if entry.meta.get("tiny") and build_model(entry.name, DIMS, 6).level == "dialogue":
            names.append(entry.name)
    return names


DIALOGUE_MODELS = _dialogue_models()
# Models whose instance says ``causal = True`` (e.g. unidirectional DialogueRNN).
CAUSAL_MODELS = [n for n in DIALOGUE_MODELS if getattr(build_model(n, DIMS, 6), "causal", False)]


@pytest.fixture(scope="module")
def corpus():
    corpus = DATASETS.get("synthetic")(n_dialogues=6, n_utterances=60, audio_dim=DIMS["audio"],
                                       text_dim=DIMS["text"], vision_dim=DIMS["vision"], seed=1)
    lengths = sorted(len(d) for d in corpus.dialogues)
    assert len(set(lengths)) >= 3, lengths  # the leak tests need three different lengths
    return corpus


def _setup(name, corpus):
    torch.manual_seed(0)
    model = build_model(name, corpus.dims, 6).eval()
    tensors = SplitTensors(corpus.dialogues, corpus.modalities,
                           want_frames=model_class(name).inputs == "frames")
    by_length = sorted(range(len(corpus.dialogues)), key=lambda i: len(corpus.dialogues[i]))
    lengths = [len(corpus.dialogues[i]) for i in by_length]
    short = by_length[0]
    # Two partners of different lengths, both longer than the short dialogue.
    longer = [i for i, n in zip(by_length, lengths) if n > lengths[0]]
    partner_a = longer[0]
    partner_b = next(i for i in longer if len(corpus.dialogues[i]) != len(corpus.dialogues[partner_a]))
    return model, tensors, short, partner_a, partner_b


def _logits(model, batch):
    with torch.no_grad():
        return model(batch).logits


def _shift_utterance(batch, row: int, t: int) -> None:
    for m in batch.features:
        batch.features[m][row, t] += 1.0


def test_the_conversational_baselines_are_found():
    assert {"dialoguernn_tiny", "dialoguegcn_tiny", "cogmen_tiny"} <= set(DIALOGUE_MODELS)


@pytest.mark.parametrize("name", DIALOGUE_MODELS)
def test_context_is_used(name, corpus):
    model, tensors, short, _, _ = _setup(name, corpus)
    t = len(corpus.dialogues[short]) - 1
    batch = tensors.dialogue_batch([short])
    before = _logits(model, batch)
    _shift_utterance(batch, 0, t - 1)
    after = _logits(model, batch)
    assert not torch.equal(before[0, t], after[0, t]), "utterance t ignores utterance t - 1"


@pytest.mark.parametrize("name", DIALOGUE_MODELS)
def test_no_leak_across_padding_or_dialogues(name, corpus):
    model, tensors, short, partner_a, partner_b = _setup(name, corpus)
    n = len(corpus.dialogues[short])
    alone = _logits(model, tensors.dialogue_batch([short]))[0, :n]
    with_a = _logits(model, tensors.dialogue_batch([short, partner_a]))[0, :n]
    loud = tensors.dialogue_batch([short, partner_b])  # another padding length, and a partner
    for m in loud.features:  # so large that any leak from it moves the short dialogue's logits
        loud.features[m][1] = loud.features[m][1] * 100.0 + 7.0
    with_loud = _logits(model, loud)[0, :n]
    # Bits may differ, not values: CPU GEMM kernels pick their path by the number of rows (MKL
    # treats fewer than 4 rows apart; nn.Linear alone shows it) and masked reductions by the
    # padded length, so equality is up to float32 rounding (measured <= 1e-7 on tiny models).
    torch.testing.assert_close(with_a, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(with_loud, alone, rtol=1e-5, atol=1e-5)


def test_some_model_claims_to_be_causal():
    assert "dialoguernn_tiny" in CAUSAL_MODELS


@pytest.mark.parametrize("name", CAUSAL_MODELS)
def test_causal_models_never_read_the_future(name, corpus):
    model, tensors, short, partner_a, _ = _setup(name, corpus)
    n = len(corpus.dialogues[partner_a])
    t = n // 2
    batch = tensors.dialogue_batch([partner_a, short])
    before = _logits(model, batch)
    _shift_utterance(batch, 0, t + 1)
    after = _logits(model, batch)
    assert torch.equal(before[0, : t + 1], after[0, : t + 1])
    assert not torch.equal(before[0, t + 1 :n], after[0, t + 1 :n]), "the changed utterance is not read at all"


def test_window_graph_edges_and_relations():
    from merbench.models._dialogue_graph import window_graph

    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    speakers = torch.tensor([[0, 1, 1, 0, 0, 0], [2, 0, 1, 2, 0, 1]])
    edge_index, edge_type = window_graph(mask, speakers, past=2, future=1, max_speakers=3)
    first = {(b, t) for b in range(2) for t in range(6) if mask[b, t]}
    node = {bt: i for i, bt in enumerate(sorted(first))}  # nodes in batch order
    expected = set()
    for (b, t) in first:  # target t reads sources t-2 .. t+1 of its own dialogue
        for s in range(t - 2, t + 2):
            if (b, s) in first:
                relation = (int(speakers[b, s]) * 3 + int(speakers[b, t])) * 2 + int(s >= t)
                expected.add((node[(b, s)], node[(b, t)], relation))
    got = set(zip(edge_index[0].tolist(), edge_index[1].tolist(), edge_type.tolist()))
    assert got == expected


def test_a_speaker_beyond_max_speakers_is_a_clear_error(corpus):
    from merbench.errors import MerbenchError

    torch.manual_seed(0)
    model = build_model("dialoguegcn_tiny", corpus.dims, 6, max_speakers=1).eval()
    batch = SplitTensors(corpus.dialogues, corpus.modalities, want_frames=False).dialogue_batch([0])
    with pytest.raises(MerbenchError, match="max_speakers"):
        model(batch)
