"""TFN: Tensor Fusion Network (Zadeh et al., EMNLP 2017, "Tensor Fusion Network for
Multimodal Sentiment Analysis"), layer by layer as the authors' PyTorch code in thuiar/MMSA
(src/MMSA/models/singleTask/TFN.py and subNets/FeatureNets.py); defaults are MMSA's MOSEI
configuration (config_regression.json: hidden text 128 / audio 16 / video 128, text_out 128,
post-fusion 16, dropouts 0.4). docs/models/tfn.md lists what differs and why.

``SubNet`` and ``TextSubNet`` are the authors' pre-fusion subnetworks; LMF (lmf.py) uses them too.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from merbench.data.batching import Batch
from merbench.models._blocks import WideDropout, masked_mean
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS


class SubNet(nn.Module):
    """The authors' audio / video subnetwork: BatchNorm, dropout, three ReLU layers."""

    def __init__(self, d_in: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(d_in)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.Sequential(
            nn.Linear(d_in, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            # Paper: the authors' BatchNorm fails on a training batch of one (the last batch
            # of an epoch can be one utterance); merbench normalises it with the running
            # statistics instead.
            norm = self.norm
            x = F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                             training=False, eps=norm.eps)
        else:
            x = self.norm(x)
        return self.layers(self.drop(x))  # (B, H)


class TextSubNet(nn.Module):
    """The authors' text subnetwork: a one-layer LSTM over the frames, its final hidden state
    through a linear layer (no activation).

    Paper: the authors' TextSubNet takes a dropout but sets it to 0 for a one-layer LSTM, so
    there is no text dropout here either.
    """

    def __init__(self, d_in: int, hidden: int, d_out: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(d_in, hidden, batch_first=True)
        self.linear = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Paper: the authors run the LSTM over the padded sequence and keep the state after the
        # last (padded) frame; merbench packs the sequence and keeps the state after the last
        # valid frame, so padding never changes the result.
        lengths = mask.sum(1).clamp(min=1).cpu()  # (B,)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.rnn(packed)  # h: (1, B, H)
        return self.linear(h[0])  # (B, D_out)


class TFN(MerModel):
    """Outer product of the modality representations, each with a 1 prepended.

    The prepended 1 keeps the unimodal and bimodal terms inside the trimodal tensor. Audio and
    vision are averaged over their valid frames and go through a ``SubNet``; text frames go
    through a ``TextSubNet`` (a vector arrives as a one-frame sequence). For regression
    (one output) the output is ``sigmoid(y) * 2 * output_bound - output_bound``, as the
    authors bound it to the sentiment range (-3, 3); ``output_bound: 0`` leaves it unbounded.
    Input: ``features[m]`` ``(B, T_m, D_m)`` with ``masks[m]``. Output: logits ``(B, C)``.
    """

    inputs = "frames"

    def __init__(self, dims: dict[str, int], num_outputs: int, *, audio_hidden: int = 16,
                 vision_hidden: int = 128, text_hidden: int = 128, text_out: int = 128,
                 post_fusion: int = 16, audio_dropout: float = 0.4, vision_dropout: float = 0.4,
                 post_fusion_dropout: float = 0.4, output_bound: float = 3.0) -> None:
        super().__init__(dims, num_outputs)
        hidden = {"audio": audio_hidden, "vision": vision_hidden}
        dropout = {"audio": audio_dropout, "vision": vision_dropout}
        self.subnets = nn.ModuleDict({
            m: TextSubNet(d, text_hidden, text_out) if m == "text" else SubNet(d, hidden[m], dropout[m])
            for m, d in dims.items()
        })
        width = {"text": text_out, **hidden}
        fused = 1
        for m in dims:
            fused *= width[m] + 1
        # The authors' post-fusion network: dropout on the tensor, two ReLU layers, output.
        # The tensor is wide (282,897 at MMSA's MOSEI sizes): its dropout is WideDropout,
        # the same distribution as nn.Dropout drawn twice as fast on CPU.
        self.post = nn.Sequential(
            WideDropout(post_fusion_dropout),
            nn.Linear(fused, post_fusion), nn.ReLU(),
            nn.Linear(post_fusion, post_fusion), nn.ReLU(),
            nn.Linear(post_fusion, num_outputs),
        )
        self.output_bound = output_bound

    def represent(self, batch: Batch, m: str) -> torch.Tensor:
        """One modality's pre-fusion representation ``(B, H_m)``."""
        if m == "text":
            return self.subnets[m](batch.features[m], batch.masks[m])
        # Paper: MMSA averages audio and vision over all padded frames (padding counts as
        # zeros); merbench averages over the valid frames.
        return self.subnets[m](masked_mean(batch.features[m], batch.masks[m]))  # (B, D_m) -> (B, H_m)

    def forward(self, batch: Batch) -> Output:
        tensor = None
        # The authors' order is audio, video, text: the flattened tensor is indexed (a, v, t).
        for m in sorted(self.modalities, key=("audio", "vision", "text").index):
            z = self.represent(batch, m)  # (B, H_m)
            z = torch.cat([torch.ones_like(z[:, :1]), z], dim=-1)  # (B, H_m + 1)
            # Running outer product: (B, P) x (B, H + 1) -> (B, P * (H + 1)). A batched matrix
            # product, as the authors': on CPU it is twice as fast as einsum, backward included.
            tensor = z if tensor is None else torch.bmm(tensor.unsqueeze(2), z.unsqueeze(1)).flatten(1)
        out = self.post(tensor)  # (B, C)
        if self.num_outputs == 1 and self.output_bound > 0:
            out = torch.sigmoid(out) * (2 * self.output_bound) - self.output_bound
        return Output(out)


MODELS.register("tfn", TFN)
MODELS.register("tfn_tiny", partial(TFN, audio_hidden=4, vision_hidden=4, text_hidden=4, text_out=4,
                                    post_fusion=8), tiny=True)
