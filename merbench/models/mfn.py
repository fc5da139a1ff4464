"""MFN: Memory Fusion Network (Zadeh, Liang et al., AAAI 2018, "Memory Fusion Network for
Multi-view Sequential Learning"), layer by layer as the authors' PyTorch code in thuiar/MMSA
(src/MMSA/models/singleTask/MFN.py, taken from github.com/pliang279/MFN); defaults are MMSA's
MOSEI configuration (config_regression.json: LSTM sizes text 128 / audio 32 / video 128,
memory 128, window 2, attention 128 / 0.2, proposal 128 / 0.5, retain gate 256 / 0.7,
update gate 256 / 0.0, output 128 / 0.5). docs/models/mfn.md lists what differs and why.

``MFNEncoder`` (everything but the output layer) is also MFM's discriminative encoder.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from merbench.data.batching import Batch
from merbench.models._blocks import masked_mean
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS


def _two_layer(d_in: int, hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    """Linear, ReLU, dropout, linear: every small network of MFN has this shape."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, d_out))


class MFNEncoder(nn.Module):
    """A System of LSTMs, one per modality, joined by a Delta-memory Attention Network and a
    Multi-view Gated Memory; returns the final LSTM outputs and the final memory.

    At each step every modality's LSTM reads its frame; the attention network looks at the
    concatenated LSTM memories of the previous and current step (so it sees what changed),
    and the gated memory keeps a running cross-modal summary.
    Input: ``features[m]`` ``(B, T_m, D_m)``, ``masks[m]`` ``(B, T_m)``. Output ``(B, sum H_m + M)``.
    """

    def __init__(self, dims: dict[str, int], hidden: dict[str, int], *, memory: int,
                 attention_hidden: int, attention_dropout: float, memory_hidden: int,
                 memory_dropout: float, retain_hidden: int, retain_dropout: float,
                 update_hidden: int, update_dropout: float, learn_initial_state: bool,
                 average_audio_vision: bool) -> None:
        super().__init__()
        self.modalities = list(dims)
        # Paper: MFN's System of LSTMs uses plain LSTMs (the LSTHM cell belongs to the
        # sibling model MARN); the authors' code uses nn.LSTMCell, as here.
        self.lstms = nn.ModuleDict({m: nn.LSTMCell(d, hidden[m]) for m, d in dims.items()})
        total = sum(hidden[m] for m in dims)
        self.size = total + memory
        window = 2 * total  # memories at t-1 and t, concatenated
        self.attention = _two_layer(window, attention_hidden, window, attention_dropout)  # D_a
        self.proposal = _two_layer(window, memory_hidden, memory, memory_dropout)  # D_u
        self.retain_gate = _two_layer(window + memory, retain_hidden, memory, retain_dropout)  # D_gamma1
        self.update_gate = _two_layer(window + memory, update_hidden, memory, update_dropout)  # D_gamma2
        # Paper: the authors' code starts the LSTM states and the memory at zero (the
        # default). ``learn_initial_state`` learns them instead, starting near zero: on
        # one-frame sequences (utterance vectors) zero states leave the recurrent weights and
        # the retain gate without gradient.
        self.learn_initial_state = learn_initial_state
        if learn_initial_state:
            self.initial_h = nn.ParameterDict({m: nn.Parameter(0.01 * torch.randn(hidden[m])) for m in dims})
            self.initial_c = nn.ParameterDict({m: nn.Parameter(0.01 * torch.randn(hidden[m])) for m in dims})
            self.initial_memory = nn.Parameter(0.01 * torch.randn(memory))
        self.hidden = {m: hidden[m] for m in dims}
        self.memory = memory
        # MMSA's MOSEI configuration (need_normalized) averages audio and vision over time and
        # its word-alignment repeats the average at every text step; this option does the same.
        self.average_audio_vision = average_audio_vision

    def _inputs(self, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        feats = {m: batch.features[m] for m in self.modalities}  # (B, T_m, D_m)
        masks = {m: batch.masks[m] for m in self.modalities}  # (B, T_m)
        if self.average_audio_vision and "text" in feats:
            for m in ("audio", "vision"):
                if m in feats:
                    mean = masked_mean(feats[m], masks[m])  # (B, D_m)
                    feats[m] = mean.unsqueeze(1).expand(-1, feats["text"].shape[1], -1)  # (B, T_text, D_m)
                    masks[m] = masks["text"]
        return feats, masks

    def forward(self, batch: Batch) -> torch.Tensor:
        feats, masks = self._inputs(batch)
        first = next(iter(feats.values()))
        b, device = first.shape[0], first.device
        lengths = {m: masks[m].sum(1) for m in self.modalities}  # (B,) valid frames
        steps = torch.stack(list(lengths.values())).max(0).values  # (B,) steps per utterance
        # Paper: MFN reads word-aligned sequences (one step per word, every modality
        # averaged over the word). merbench's modalities have their own frame rates, so
        # each is spread evenly over the utterance's steps (as many as its longest
        # modality): a modality with fewer frames reads a new frame only at some steps and
        # keeps its LSTM state otherwise. Padded frames are never read and, past the last
        # step, neither the LSTMs nor the memory change. On aligned input (every modality
        # with the same frames) this is the authors' loop.
        rows = torch.arange(b, device=device).unsqueeze(0)  # (1, B)
        n_steps = int(steps.max().item()) if b else 0
        t = torch.arange(n_steps, device=device).unsqueeze(1)  # (S, 1)
        active = t < steps  # (S, B)
        span = steps.clamp(min=1)
        inputs, advance, every = {}, {}, {}
        for m in self.modalities:
            # Frames read after step t: ceil((t + 1) * L / S); one more than after t - 1
            # exactly when a frame starts inside this step.
            read = ((t + 1) * lengths[m] + span - 1) // span  # (S, B)
            before = (t * lengths[m] + span - 1) // span
            advance[m] = (active & (read > before)).unsqueeze(-1)  # (S, B, 1)
            every[m] = bool(advance[m].all())  # aligned, unpadded input: every step reads a frame
            inputs[m] = feats[m][rows, (read - 1).clamp(0, feats[m].shape[1] - 1)]  # (S, B, D_m)
        all_active = bool(active.all())
        if self.learn_initial_state:
            h = {m: self.initial_h[m].expand(b, -1) for m in self.modalities}  # (B, H_m)
            c = {m: self.initial_c[m].expand(b, -1) for m in self.modalities}
            mem = self.initial_memory.expand(b, -1)  # (B, M)
        else:
            h = {m: first.new_zeros(b, self.hidden[m]) for m in self.modalities}  # (B, H_m)
            c = {m: first.new_zeros(b, self.hidden[m]) for m in self.modalities}
            mem = first.new_zeros(b, self.memory)  # (B, M)
        for step in range(n_steps):
            c_prev = torch.cat([c[m] for m in self.modalities], dim=-1)  # (B, sum H)
            for m in self.modalities:
                h_new, c_new = self.lstms[m](inputs[m][step], (h[m], c[m]))
                if every[m]:
                    h[m], c[m] = h_new, c_new
                else:
                    h[m] = torch.where(advance[m][step], h_new, h[m])
                    c[m] = torch.where(advance[m][step], c_new, c[m])
            c_now = torch.cat([c[m] for m in self.modalities], dim=-1)  # (B, sum H)
            # Delta-memory Attention Network over the memories at t-1 and t.
            c_star = torch.cat([c_prev, c_now], dim=-1)  # (B, 2 sum H)
            attended = torch.softmax(self.attention(c_star), dim=-1) * c_star
            proposal = torch.tanh(self.proposal(attended))  # (B, M)
            # Multi-view Gated Memory: retain part of the old memory, write part of the new.
            both = torch.cat([attended, mem], dim=-1)  # (B, 2 sum H + M)
            retain = torch.sigmoid(self.retain_gate(both))
            update = torch.sigmoid(self.update_gate(both))
            new_mem = retain * mem + update * proposal
            mem = new_mem if all_active else torch.where(active[step].unsqueeze(-1), new_mem, mem)
        return torch.cat([h[m] for m in self.modalities] + [mem], dim=-1)  # (B, sum H + M)


class MFN(MerModel):
    """``MFNEncoder`` and the authors' output network (linear, ReLU, dropout, linear) on the
    final LSTM outputs of every modality and the final memory.

    Input: ``features[m]`` ``(B, T_m, D_m)`` with ``masks[m]`` ``(B, T_m)`` (vectors arrive as
    one-frame sequences). Output: logits ``(B, C)``, unbounded (as the authors').
    """

    inputs = "frames"

    def __init__(self, dims: dict[str, int], num_outputs: int, *, audio_hidden: int = 32,
                 text_hidden: int = 128, vision_hidden: int = 128, memory: int = 128,
                 attention_hidden: int = 128, attention_dropout: float = 0.2,
                 memory_hidden: int = 128, memory_dropout: float = 0.5,
                 retain_hidden: int = 256, retain_dropout: float = 0.7,
                 update_hidden: int = 256, update_dropout: float = 0.0,
                 output_hidden: int = 128, output_dropout: float = 0.5,
                 learn_initial_state: bool = False, average_audio_vision: bool = False) -> None:
        super().__init__(dims, num_outputs)
        hidden = {"audio": audio_hidden, "text": text_hidden, "vision": vision_hidden}
        self.encoder = MFNEncoder(
            dims, hidden, memory=memory, attention_hidden=attention_hidden,
            attention_dropout=attention_dropout, memory_hidden=memory_hidden,
            memory_dropout=memory_dropout, retain_hidden=retain_hidden, retain_dropout=retain_dropout,
            update_hidden=update_hidden, update_dropout=update_dropout,
            learn_initial_state=learn_initial_state, average_audio_vision=average_audio_vision)
        self.output = _two_layer(self.encoder.size, output_hidden, num_outputs, output_dropout)

    def forward(self, batch: Batch) -> Output:
        return Output(self.output(self.encoder(batch)))  # (B, sum H + M) -> (B, C)


MODELS.register("mfn", MFN, summary="Memory Fusion Network: an LSTM per modality, joined by delta-memory "
                                     "attention and a multi-view gated memory.")
MODELS.register("mfn_tiny", partial(MFN, audio_hidden=3, text_hidden=4, vision_hidden=3, memory=4,
                                    attention_hidden=4, memory_hidden=4, retain_hidden=4,
                                    update_hidden=4, output_hidden=4), tiny=True)
