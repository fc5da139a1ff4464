"""DialogueRNN: party, global and emotion GRUs over a conversation (Majumder et al., AAAI 2019,
"DialogueRNN: An Attentive RNN for Emotion Detection in Conversations"), layer by layer as the
authors' code (declare-lab/conv-emotion, DialogueRNN/model.py). Defaults: D_g = D_p = 150,
D_e = D_h = 100 (their train_MELD.py; train_IEMOCAP.py uses 500, 500, 300, 300, which the
IEMOCAP recipe sets), recurrent dropout 0.1, dropout 0.1, "general" context attention."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from merbench.data.batching import Batch
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS


# Fewer than 4 rows send MKL's matrix products down another kernel whose sums round
# differently (tests/test_conversational.py); the recurrence never narrows below this many
# rows, so on one thread a row it keeps gets the bits it gets in the full batch. (On more
# threads MKL splits the rows between them and other counts round differently too.)
MIN_ROWS = 4


class DialogueRNNCell(nn.Module):
    """One pass of DialogueRNN over the dialogues in time order.

    Per utterance t with speaker s: the global GRU reads the utterance and the speaker's
    party state; attention over the earlier global states gives the context c_t; the
    speaker's party GRU reads the utterance and c_t (listeners keep their state); the emotion
    GRU reads the new party state. Input ``u`` ``(B, L, D_m)``, ``speakers`` ``(B, L)``,
    optional ``mask`` ``(B, L)`` (True = a real utterance); output emotion states
    ``(B, L, D_e)``, zero where ``mask`` is False. Utterance t depends on
    utterances 0..t only.

    A dialogue leaves the recurrence after its last real utterance, so the matrix products
    run on the dialogues still going rather than on the whole batch to its longest dialogue's
    end (which the authors' code does, and which changes none of a real utterance's values).
    The rows that stay keep the batch's order and the dropout masks are drawn for the whole
    batch, as before: on one CPU thread the outputs are bit for bit those of running every
    row, and the gradients differ in the last bits only, where sums over rows lose their
    zeros (docs/models/dialoguernn.md, Speed).
    """

    def __init__(self, d_utt: int, global_size: int, party_size: int, emotion_size: int,
                 rec_dropout: float) -> None:
        super().__init__()
        self.global_size, self.party_size, self.emotion_size = global_size, party_size, emotion_size
        self.global_gru = nn.GRUCell(d_utt + party_size, global_size)
        self.party_gru = nn.GRUCell(d_utt + global_size, party_size)
        self.emotion_gru = nn.GRUCell(party_size, emotion_size)
        # "general" attention: alpha = softmax(u_t^T W_a [g_1, ..., g_{t-1}]).
        self.context_query = nn.Linear(d_utt, global_size, bias=False)
        self.dropout = nn.Dropout(rec_dropout)

    def _drop(self, x: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
        """``self.dropout`` on the ``rows`` of an ``(n, D)`` batch: the mask is drawn for all
        ``n`` rows, as nn.Dropout draws it (bernoulli, then divided by 1 - p), so the random
        stream and each kept row's mask are those of the full batch."""
        p = self.dropout.p
        if len(rows) == n or not self.training or p == 0:
            return self.dropout(x)
        noise = x.new_empty(n, x.shape[1]).bernoulli_(1 - p).div_(1 - p)  # (n, D)
        return x * noise[rows]

    def forward(self, u: torch.Tensor, speakers: torch.Tensor, mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        n, length, _ = u.shape
        # rows[i] is the batch row of state row i: every row at first, then the dialogues that
        # have utterances left (and, below MIN_ROWS, the ones that ended last), in batch order.
        end = (torch.full((n,), length, device=u.device) if mask is None else
               (mask * torch.arange(1, length + 1, device=u.device)).amax(1))  # (B,) one past the last
        order = torch.argsort(end, descending=True, stable=True)
        left = [max(int((end > t).sum()), min(n, MIN_ROWS)) for t in range(length)]
        rows = torch.arange(n, device=u.device)
        # Any number of parties: a state per speaker index seen in the batch.
        parties = u.new_zeros(n, int(speakers.max()) + 1, self.party_size)  # (B, P, D_p)
        emotion = u.new_zeros(n, self.emotion_size)
        history: list[torch.Tensor] = []  # global states g_1 .. g_{t-1} of the kept rows
        emotions = []
        for t in range(length):
            if left[t] < len(rows):  # dialogues ended: drop their rows from every state
                kept = order[: left[t]].sort().values
                keep = torch.searchsorted(rows, kept)
                rows, parties, emotion = kept, parties[keep], emotion[keep]
                history = [g[keep] for g in history]
            full = len(rows) == n
            u_t, speaker = (u[:, t], speakers[:, t]) if full else (u[rows, t], speakers[rows, t])
            speaker_state = parties[torch.arange(len(rows), device=u.device), speaker]  # (B, D_p)
            g_prev = history[-1] if history else u.new_zeros(len(rows), self.global_size)
            g = self._drop(self.global_gru(torch.cat([u_t, speaker_state], -1), g_prev), rows, n)
            if history:
                past = torch.stack(history, 1)  # (B, t, D_g)
                weights = torch.einsum("btd,bd->bt", past, self.context_query(u_t)).softmax(-1)
                context = torch.einsum("bt,btd->bd", weights, past)  # (B, D_g)
            else:
                context = u.new_zeros(len(rows), self.global_size)
            new_state = self._drop(self.party_gru(torch.cat([u_t, context], -1), speaker_state), rows, n)
            # Paper: the listener-update variant (DialogueRNN_l) is not built; listeners keep
            # their state, as in the authors' default (listener_state=False).
            is_speaker = nn.functional.one_hot(speaker, parties.shape[1]).unsqueeze(-1).to(u.dtype)
            parties = parties * (1 - is_speaker) + new_state.unsqueeze(1) * is_speaker
            emotion = self._drop(self.emotion_gru(new_state, emotion), rows, n)
            history.append(g)
            emotions.append(emotion if full else u.new_zeros(n, self.emotion_size).index_copy(0, rows, emotion))
        emotions = torch.stack(emotions, 1)  # (B, L, D_e)
        # Rows kept below MIN_ROWS ran on past their end: their padding is zeroed as well.
        return emotions if mask is None else emotions.masked_fill(~mask[..., None], 0.0)


class DialogueRNN(MerModel):
    """DialogueRNN on the concatenated modality vectors of each utterance.

    ``bidirectional`` adds a second DialogueRNN over each dialogue reversed (BiDialogueRNN);
    ``emotion_attention`` adds attention over all emotion states of the dialogue before the
    classifier (the paper's "+Att"). Without both the model is causal: utterance t sees
    utterances 0..t of its dialogue only.
    Input: ``features[m]`` ``(B, L, D_m)``, ``speakers`` ``(B, L)``, ``utt_mask`` ``(B, L)``.
    Output: logits ``(B, L, C)``.
    """

    level = "dialogue"
    causal = True

    def __init__(self, dims: dict[str, int], num_outputs: int, *, global_size: int = 150,
                 party_size: int = 150, emotion_size: int = 100, hidden: int = 100,
                 dropout: float = 0.1, rec_dropout: float = 0.1, emotion_dropout: float = 0.25,
                 bidirectional: bool = False, emotion_attention: bool = False) -> None:
        super().__init__(dims, num_outputs)
        # Paper: the multimodal variant feeds the concatenated unimodal features; so does merbench.
        d_utt = sum(dims.values())
        self.bidirectional = bidirectional
        self.causal = not (bidirectional or emotion_attention)
        self.forward_rnn = DialogueRNNCell(d_utt, global_size, party_size, emotion_size, rec_dropout)
        self.backward_rnn = (DialogueRNNCell(d_utt, global_size, party_size, emotion_size, rec_dropout)
                             if bidirectional else None)
        directions = 2 if bidirectional else 1
        d_emotion = directions * emotion_size
        # Paper: silent on it; the authors' code drops the emotion states with p = dropout + 0.15.
        self.emotion_dropout = nn.Dropout(emotion_dropout)
        # "general2" attention of the authors' code: score(e_s, e_t) = e_s . (W e_t + b).
        self.emotion_query = nn.Linear(d_emotion, d_emotion) if emotion_attention else None
        d_hidden = directions * hidden
        self.classifier = nn.Sequential(nn.Linear(d_emotion, d_hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(d_hidden, num_outputs))

    def forward(self, batch: Batch) -> Output:
        u = torch.cat([batch.features[m] for m in self.modalities], dim=-1)  # (B, L, D_m)
        mask = batch.utt_mask
        emotions = self.forward_rnn(u, batch.speakers, mask)  # (B, L, D_e)
        if self.backward_rnn is not None:
            # Reverse each dialogue's real utterances only, so padding stays at the end; the
            # speakers are reversed with them (the authors' _reverse_seq of U and qmask).
            length = mask.sum(1, keepdim=True)  # (B, 1)
            t = torch.arange(mask.shape[1], device=u.device)[None]
            reverse = torch.where(t < length, length - 1 - t, t)  # (B, L), its own inverse
            u_rev = u.gather(1, reverse[..., None].expand_as(u))
            backward = self.backward_rnn(u_rev, batch.speakers.gather(1, reverse), mask)
            backward = backward.gather(1, reverse[..., None].expand_as(backward))
            emotions = torch.cat([emotions, backward], dim=-1)  # (B, L, 2 D_e)
        emotions = self.emotion_dropout(emotions)
        if self.emotion_query is not None:
            scores = self.emotion_query(emotions) @ emotions.transpose(1, 2)  # (B, L_t, L_s)
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
            emotions = scores.softmax(-1) @ emotions  # (B, L, d_emotion)
        return Output(self.classifier(emotions))


MODELS.register("dialoguernn", DialogueRNN)
MODELS.register("dialoguernn_tiny", partial(DialogueRNN, global_size=8, party_size=6, emotion_size=5,
                                            hidden=4), tiny=True)
# The paper's best IEMOCAP row: BiDialogueRNN+Att.
MODELS.register("bidialoguernn", partial(DialogueRNN, bidirectional=True, emotion_attention=True),
                summary="BiDialogueRNN+Att: DialogueRNN read in both directions, with attention over "
                        "the emotion states.")
MODELS.register("bidialoguernn_tiny", partial(DialogueRNN, global_size=8, party_size=6, emotion_size=5,
                                              hidden=4, bidirectional=True, emotion_attention=True),
                tiny=True)
