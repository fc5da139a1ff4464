"""MFN: Memory Fusion Network (Zadeh, Liang et al., AAAI 2018, "Memory Fusion Network for
Multi-view Sequential Learning"); defaults follow the authors' code (github.com/pliang279/MFN,
the best-accuracy configuration noted in test_mosi.py: LSTM sizes text 64 / audio 8 /
vision 80, memory 400, attention 128, gates 128, output layer 256, Adam lr 0.005)."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from merbench.data.batching import Batch
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS


def _two_layer(d_in: int, hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    """Linear, ReLU, dropout, linear: every small network of MFN has this shape."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, d_out))


class MFN(MerModel):
    """A System of LSTMs, one per modality, joined by a Delta-memory Attention Network and a
    Multi-view Gated Memory.

    At each step every modality's LSTM reads its frame; the attention network looks at the
    concatenated LSTM memories of the previous and current step (so it sees what changed),
    and the gated memory keeps a running cross-modal summary. The output reads the final
    LSTM outputs of every modality and the final memory.
    Input: ``features[m]`` ``(B, T_m, D_m)`` with ``masks[m]`` ``(B, T_m)`` (vectors arrive as
    one-frame sequences). Output: logits ``(B, C)``.
    """

    inputs = "frames"

    def __init__(self, dims: dict[str, int], num_outputs: int, *, audio_hidden: int = 8,
                 text_hidden: int = 64, vision_hidden: int = 80, memory: int = 400,
                 attention_hidden: int = 128, attention_dropout: float = 0.5,
                 memory_hidden: int = 128, memory_dropout: float = 0.2,
                 gate_hidden: int = 128, gate_dropout: float = 0.5,
                 output_hidden: int = 256, output_dropout: float = 0.5) -> None:
        super().__init__(dims, num_outputs)
        hidden = {"audio": audio_hidden, "text": text_hidden, "vision": vision_hidden}
        # Paper: MFN's System of LSTMs uses plain LSTMs (the LSTHM cell belongs to the
        # sibling model MARN); the authors' code uses nn.LSTMCell, as here.
        self.lstms = nn.ModuleDict({m: nn.LSTMCell(d, hidden[m]) for m, d in dims.items()})
        total = sum(hidden[m] for m in dims)
        window = 2 * total  # memories at t-1 and t, concatenated
        self.attention = _two_layer(window, attention_hidden, window, attention_dropout)  # D_a
        self.proposal = _two_layer(window, memory_hidden, memory, memory_dropout)  # D_u
        self.retain_gate = _two_layer(window + memory, gate_hidden, memory, gate_dropout)  # D_gamma1
        self.update_gate = _two_layer(window + memory, gate_hidden, memory, gate_dropout)  # D_gamma2
        self.output = _two_layer(total + memory, output_hidden, num_outputs, output_dropout)
        # Paper: the authors' code starts the LSTM states and the memory at zero. Here they
        # are learnt, starting near zero: on utterance vectors (one-frame sequences) zero
        # states would leave the recurrent weights and the retain gate without gradient.
        self.initial_h = nn.ParameterDict({m: nn.Parameter(0.01 * torch.randn(hidden[m])) for m in dims})
        self.initial_c = nn.ParameterDict({m: nn.Parameter(0.01 * torch.randn(hidden[m])) for m in dims})
        self.initial_memory = nn.Parameter(0.01 * torch.randn(memory))

    def forward(self, batch: Batch) -> Output:
        feats = {m: batch.features[m] for m in self.modalities}  # (B, T_m, D_m)
        b = next(iter(feats.values())).shape[0]
        device = next(iter(feats.values())).device
        lengths = {m: batch.masks[m].sum(1) for m in self.modalities}  # (B,) valid frames
        steps = torch.stack(list(lengths.values())).max(0).values  # (B,) steps per utterance
        # Paper: MFN reads word-aligned sequences (one step per word, every modality
        # averaged over the word). merbench's modalities have their own frame rates, so
        # each is spread evenly over the utterance's steps (as many as its longest
        # modality): a modality with fewer frames reads a new frame only at some steps and
        # keeps its LSTM state otherwise. Padded frames are never read and, past the last
        # step, neither the LSTMs nor the memory change.
        rows = torch.arange(b, device=device)
        h = {m: self.initial_h[m].expand(b, -1) for m in self.modalities}  # (B, H_m)
        c = {m: self.initial_c[m].expand(b, -1) for m in self.modalities}
        mem = self.initial_memory.expand(b, -1)  # (B, M)
        for t in range(int(steps.max().item()) if b else 0):
            active = t < steps  # (B,)
            span = steps.clamp(min=1)
            c_prev = torch.cat([c[m] for m in self.modalities], dim=-1)  # (B, sum H)
            for m in self.modalities:
                # Frames read after step t: ceil((t + 1) * L / S); one more than after t - 1
                # exactly when a frame starts inside this step.
                read = ((t + 1) * lengths[m] + span - 1) // span  # (B,)
                before = (t * lengths[m] + span - 1) // span
                advance = (active & (read > before)).unsqueeze(-1)  # (B, 1)
                idx = (read - 1).clamp(0, feats[m].shape[1] - 1)
                h_new, c_new = self.lstms[m](feats[m][rows, idx], (h[m], c[m]))
                h[m] = torch.where(advance, h_new, h[m])
                c[m] = torch.where(advance, c_new, c[m])
            c_now = torch.cat([c[m] for m in self.modalities], dim=-1)  # (B, sum H)
            # Delta-memory Attention Network over the memories at t-1 and t.
            c_star = torch.cat([c_prev, c_now], dim=-1)  # (B, 2 sum H)
            attended = torch.softmax(self.attention(c_star), dim=-1) * c_star
            proposal = torch.tanh(self.proposal(attended))  # (B, M)
            # Multi-view Gated Memory: retain part of the old memory, write part of the new.
            both = torch.cat([attended, mem], dim=-1)  # (B, 2 sum H + M)
            retain = torch.sigmoid(self.retain_gate(both))
            update = torch.sigmoid(self.update_gate(both))
            mem = torch.where(active.unsqueeze(-1), retain * mem + update * proposal, mem)
        final = torch.cat([h[m] for m in self.modalities] + [mem], dim=-1)  # (B, sum H + M)
        return Output(self.output(final))


MODELS.register("mfn", MFN)
MODELS.register("mfn_tiny", partial(MFN, audio_hidden=3, text_hidden=4, vision_hidden=3, memory=4,
                                    attention_hidden=4, memory_hidden=4, gate_hidden=4,
                                    output_hidden=4), tiny=True)
