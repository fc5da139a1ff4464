"""COGMEN: transformer context plus a relational graph over a conversation (Joshi et al.,
NAACL 2022, "COGMEN: COntextualized GNN based Multimodal Emotion recognitioN"); defaults from
the authors' code (Exploration-Lab/COGMEN train.py: 2 transformer layers, hidden size 100,
windows of 5 past and 5 future utterances, 1 TransformerConv head, dropout 0.5)."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from merbench.data.batching import Batch
from merbench.models._dialogue_graph import check_speakers, num_relations, to_padded, window_graph
from merbench.models.base import MerModel, Output
from merbench.optional import names_from
from merbench.ranges import NON_NEGATIVE
from merbench.registry import MODELS

# torch_geometric is the graph extra, imported when COGMEN is built: without it COGMEN is listed
# and building it says what to install.
RGCNConv, TransformerConv = names_from("torch_geometric.nn", "RGCNConv", "TransformerConv")


def official_heads(d_model: int) -> int:
    """The authors' rule: the smallest head count in 7..14 that divides d_model, else 1."""
    return next((h for h in range(7, 15) if d_model % h == 0), 1)


class COGMEN(MerModel):
    """Transformer over each dialogue, then RGCN + graph transformer over its window graph.

    1. The concatenated modality vectors of a dialogue go through a transformer encoder
       (global context), projected to ``hidden``.
    2. Edges join utterances at most ``window_past`` before / ``window_future`` after each
       other; the relation type is (speaker of the source, speaker of the target, source
       before target or not). An RGCN layer, then a TransformerConv layer, batch norm and
       leaky ReLU give the graph features.
    3. An MLP classifies each utterance's graph features.
    Input: ``features[m]`` ``(B, L, D_m)``, ``speakers`` ``(B, L)``, ``utt_mask`` ``(B, L)``.
    Output: logits ``(B, L, C)``.
    """

    level = "dialogue"
    causal = False
    arg_ranges = {"heads": NON_NEGATIVE}  # 0: the authors' rule picks the head count

    def __init__(self, dims: dict[str, int], num_outputs: int, *, hidden: int = 100,
                 context_layers: int = 2, heads: int = 0, feedforward: int = 2048,
                 graph_heads: int = 1, window_past: int = 5, window_future: int = 5,
                 max_speakers: int = 9, dropout: float = 0.5) -> None:
        super().__init__(dims, num_outputs)
        self.window_past, self.window_future, self.max_speakers = window_past, window_future, max_speakers
        d_utt = sum(dims.values())  # the authors concatenate audio, text and vision
        # heads = 0: the authors' rule; feedforward 2048 is PyTorch's default, which they keep.
        heads = heads or official_heads(d_utt)
        layer = nn.TransformerEncoderLayer(d_utt, heads, feedforward, dropout, batch_first=True)
        # Paper: no positional encoding (the authors' code builds one but never uses it).
        # PyTorch's nested-tensor fast path needs an even head count; it is only an optimisation.
        self.context = nn.TransformerEncoder(layer, context_layers, enable_nested_tensor=heads % 2 == 0)
        self.context_out = nn.Linear(d_utt, hidden)
        # Paper: the authors' code has a num_bases option but builds the RGCN without bases.
        self.rgcn = RGCNConv(hidden, hidden, num_relations(max_speakers))
        self.graph_transformer = TransformerConv(hidden, hidden, heads=graph_heads, concat=True)
        d_graph = hidden * graph_heads
        self.norm = nn.BatchNorm1d(d_graph)
        # Paper: the classifier reads the graph features only (concat_gin_gout off by default).
        self.classifier = nn.Sequential(nn.Linear(d_graph, hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, num_outputs))

    def forward(self, batch: Batch) -> Output:
        mask = batch.utt_mask
        check_speakers(batch.speakers, mask, self.max_speakers, "cogmen")
        u = torch.cat([batch.features[m] for m in self.modalities], dim=-1)  # (B, L, D_m)
        # Paper: the authors' encoder gets no padding mask, so their padding enters the
        # attention; merbench masks it.
        context = self.context_out(self.context(u, src_key_padding_mask=~mask))  # (B, L, hidden)
        nodes = context[mask]  # (N, hidden): real utterances only
        edge_index, edge_type = window_graph(mask, batch.speakers, self.window_past, self.window_future,
                                             self.max_speakers)
        h = self.rgcn(nodes, edge_index, edge_type)  # (N, hidden)
        # Batch norm over the nodes of the batch: in training, an utterance's features depend
        # on the batch's statistics (as in the authors' code); in eval, on running statistics.
        h = nn.functional.leaky_relu(self.norm(self.graph_transformer(h, edge_index)))  # (N, d_graph)
        return Output(to_padded(self.classifier(h), mask))  # (B, L, C), zeros at padding


MODELS.register("cogmen", COGMEN)
MODELS.register("cogmen_tiny", partial(COGMEN, hidden=6, feedforward=8, window_past=2, window_future=2),
                tiny=True)
