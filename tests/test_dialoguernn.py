"""DialogueRNN's recurrence drops a dialogue's rows once it has ended (merbench/models/dialoguernn.py,
``DialogueRNNCell``); these tests hold it to the straightforward loop that runs every row of
the batch to the longest dialogue's end, the way the authors' code does.

``reference`` below is that loop, written out on the cell's own layers. On real utterances
the two must give the same outputs, the same gradients and the same dropout masks (the masks
are drawn for the whole batch in both), and the cell stays causal.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from merbench.models.dialoguernn import MIN_ROWS, DialogueRNNCell

D_UTT, SIZES = 7, dict(global_size=9, party_size=8, emotion_size=6)


def reference(cell: DialogueRNNCell, u: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
    """Every row to the end, the global history stacked anew at each step."""
    n, length, _ = u.shape
    rows = torch.arange(n)
    parties = u.new_zeros(n, int(speakers.max()) + 1, cell.party_size)
    emotion = u.new_zeros(n, cell.emotion_size)
    history, emotions = [], []
    for t in range(length):
        u_t, speaker = u[:, t], speakers[:, t]
        speaker_state = parties[rows, speaker]
        g_prev = history[-1] if history else u.new_zeros(n, cell.global_size)
        g = cell.dropout(cell.global_gru(torch.cat([u_t, speaker_state], -1), g_prev))
        if history:
            past = torch.stack(history, 1)
            weights = torch.einsum("btd,bd->bt", past, cell.context_query(u_t)).softmax(-1)
            context = torch.einsum("bt,btd->bd", weights, past)
        else:
            context = u.new_zeros(n, cell.global_size)
        new_state = cell.dropout(cell.party_gru(torch.cat([u_t, context], -1), speaker_state))
        is_speaker = nn.functional.one_hot(speaker, parties.shape[1]).unsqueeze(-1).to(u.dtype)
        parties = parties * (1 - is_speaker) + new_state.unsqueeze(1) * is_speaker
        emotion = cell.dropout(cell.emotion_gru(new_state, emotion))
        history.append(g)
        emotions.append(emotion)
    return torch.stack(emotions, 1)


def ragged(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A padded batch of dialogues of these lengths: features, speakers (three parties), mask."""
    gen = torch.Generator().manual_seed(seed)
    length = max(lengths)
    mask = torch.arange(length)[None] < torch.tensor(lengths)[:, None]  # (B, L)
    u = torch.randn(len(lengths), length, D_UTT, generator=gen) * mask[..., None]
    speakers = torch.randint(0, 3, (len(lengths), length), generator=gen) * mask
    return u, speakers, mask


# Dialogues ending at many different steps, so rows leave the recurrence one after another
# down to MIN_ROWS and below it; the longest is not first, so kept rows are not a prefix.
LENGTHS = [5, 12, 3, 9, 12, 1, 7, 7, 10, 2]


def both(train: bool, seed: int = 0):
    """Reference and cell on the same batch, weights and random stream: (mask, outputs, grads)."""
    torch.manual_seed(seed)
    cell = DialogueRNNCell(D_UTT, rec_dropout=0.3, **SIZES).train(train)
    u, speakers, mask = ragged(LENGTHS, seed)
    target = torch.randn(*mask.shape, SIZES["emotion_size"], generator=torch.Generator().manual_seed(seed + 1))
    results = []
    for run in (lambda x: reference(cell, x, speakers), lambda x: cell(x, speakers, mask)):
        cell.zero_grad()
        x = u.clone().requires_grad_()
        torch.manual_seed(seed + 2)
        out = run(x)
        ((out * target)[mask]).sum().backward()
        grads = {"u": x.grad[mask]} | {k: p.grad.clone() for k, p in cell.named_parameters()}
        results.append((out.detach(), grads, torch.rand(3)))  # the draw after: same stream used
    return mask, results


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train-with-dropout"])
def test_dropping_ended_dialogues_changes_no_number(train):
    mask, ((ref, ref_grads, ref_next), (out, grads, next_draw)) = both(train)
    assert MIN_ROWS < len(LENGTHS)
    # Values, not bits: the rows kept go through matrix products on fewer rows, and CPU kernels
    # may round those differently (tests/test_conversational.py); the reductions of the
    # gradient over rows are reassociated.
    torch.testing.assert_close(out[mask], ref[mask], rtol=1e-6, atol=1e-7)
    assert set(grads) == set(ref_grads)
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-5, atol=1e-6, msg=name)
    assert torch.equal(next_draw, ref_next), "the cell drew another amount of random numbers"
    assert (out[~mask] == 0).all(), "after a dialogue's end its states are zero"


def test_a_mask_with_holes_runs_those_rows_to_their_last_utterance():
    """A row is dropped after its last real utterance, not at its first padding."""
    torch.manual_seed(0)
    cell = DialogueRNNCell(D_UTT, rec_dropout=0.0, **SIZES).eval()
    u, speakers, mask = ragged(LENGTHS)
    holed = mask.clone()
    holed[6, 2] = False  # row 6 still ends at step 7, when five other rows are left
    with torch.no_grad():
        torch.testing.assert_close(cell(u, speakers, holed)[holed], reference(cell, u, speakers)[holed],
                                   rtol=1e-6, atol=1e-7)


def test_the_cell_is_causal_after_rows_leave():
    torch.manual_seed(0)
    cell = DialogueRNNCell(D_UTT, rec_dropout=0.0, **SIZES).eval()
    u, speakers, mask = ragged(LENGTHS)
    row, t = 4, 8  # a 12-utterance dialogue, after the shorter ones have left
    later = u.clone()
    later[row, t + 1:] += 1.0
    with torch.no_grad():
        before, after = cell(u, speakers, mask), cell(later, speakers, mask)
    assert torch.equal(before[row, : t + 1], after[row, : t + 1])
    assert not torch.equal(before[row, t + 1:], after[row, t + 1:])
    others = torch.ones(len(LENGTHS), dtype=torch.bool)
    others[row] = False
    assert torch.equal(before[others], after[others])
