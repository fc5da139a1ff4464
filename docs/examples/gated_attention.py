"""GatedAttention: a fusion model written outside merbench, walked through in docs/plugins.md.

merbench --plugin docs/examples/gated_attention.py compare --dataset synthetic --models mlp,gated_attention
"""

import torch
from torch import nn

import merbench


@merbench.register_model("gated_attention")
class GatedAttention(merbench.MerModel):
    """One token per modality, self-attention across the tokens, then a learnt gate per utterance.

    Input: ``features[m]`` ``(B, D_m)`` per modality. Output: logits ``(B, C)``.
    """

    level = "utterance"  # batches of independent utterances ("dialogue": padded dialogues)
    inputs = "vectors"  # one vector per utterance and modality ("frames": sequences + masks)
    components = ("attention", "gate")  # ablation switches: bool arguments of __init__

    def __init__(self, dims: dict[str, int], num_outputs: int, hidden: int = 64, heads: int = 4,
                 dropout: float = 0.1, attention: bool = True, gate: bool = True) -> None:
        super().__init__(dims, num_outputs)
        self.project = nn.ModuleDict({m: nn.Linear(d, hidden) for m, d in dims.items()})
        self.attend = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True) if attention else None
        self.gate = nn.Linear(hidden, 1) if gate else None
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_outputs))

    def forward(self, batch) -> merbench.Output:
        tokens = torch.stack([self.project[m](batch.features[m]) for m in self.modalities], dim=1)  # (B, M, H)
        if self.attend is not None:
            tokens = tokens + self.attend(tokens, tokens, tokens, need_weights=False)[0]  # (B, M, H)
        if self.gate is not None:
            weights = self.gate(tokens).softmax(dim=1)  # (B, M, 1)
            fused = (weights * tokens).sum(dim=1)  # (B, H)
        else:
            fused = tokens.mean(dim=1)  # (B, H)
        return merbench.Output(self.head(fused))  # (B, C)
