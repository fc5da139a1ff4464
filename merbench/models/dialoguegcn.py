"""DialogueGCN: a speaker- and position-aware relational graph over a conversation (Ghosal et
al., EMNLP 2019, "DialogueGCN: A Graph Convolutional Neural Network for Emotion Recognition in
Conversation"), layer by layer as the authors' code builds it (declare-lab/conv-emotion,
DialogueGCN/model.py, with the IEMOCAP command of its README: 2-layer bi-LSTM of size 100 per
direction, graph size 100, 30 RGCN bases, windows of 10 past and 10 future utterances,
nodal attention, dropout 0.4). docs/models/dialoguegcn.md lists every difference."""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from merbench.data.batching import Batch
from merbench.errors import MerbenchError
from merbench.models._dialogue_graph import check_speakers, num_relations, to_padded, window_graph
from merbench.models.base import MerModel, Output
from merbench.optional import names_from
from merbench.registry import MODELS

# torch_geometric is the graph extra, imported when DialogueGCN is built: without it DialogueGCN
# is listed and building it says what to install.
(GraphConv,) = names_from("torch_geometric.nn", "GraphConv")
(softmax,) = names_from("torch_geometric.utils", "softmax")

RNNS = {"gru": nn.GRU, "lstm": nn.LSTM}


class WeightedRGCN(nn.Module):
    """The relational graph convolution of PyTorch Geometric 1.3-1.4, which the authors ran.

    h_j = sum over edges i -> j of w_ij W_{r(ij)} x_i + W_0 x_j + b: a weighted *sum*, with
    W_r = sum_b a_rb V_b (basis decomposition). PyG 2's ``RGCNConv`` averages per relation
    instead and takes no edge weights, so the layer is written out here. Every parameter is
    drawn from U(-1/sqrt(num_bases * in), +1/sqrt(num_bases * in)), as PyG 1.x did.
    """

    def __init__(self, d_in: int, d_out: int, relations: int, num_bases: int) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.empty(num_bases, d_in, d_out))
        self.att = nn.Parameter(torch.empty(relations, num_bases))
        self.root = nn.Parameter(torch.empty(d_in, d_out))
        self.bias = nn.Parameter(torch.empty(d_out))
        bound = 1.0 / math.sqrt(num_bases * d_in)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor,
                edge_weight: torch.Tensor) -> torch.Tensor:
        source, target = edge_index
        weight = torch.einsum("rb,bio->rio", self.att, self.basis)  # (R, in, out)
        by_relation = torch.einsum("ni,rio->rno", x, weight)  # (R, N, out)
        messages = by_relation[edge_type, source] * edge_weight.unsqueeze(-1)  # (E, out)
        summed = torch.zeros(x.shape[0], messages.shape[-1], dtype=x.dtype, device=x.device)
        return summed.index_add(0, target, messages) + x @ self.root + self.bias  # (N, out)


class DialogueGCN(MerModel):
    """Sequential context (bi-LSTM), then a two-layer graph network over each dialogue's window.

    1. A bidirectional RNN over each dialogue gives g_i (sequential context).
    2. Node i sends to every utterance j of its dialogue with i - window_past <= j <= i +
       window_future (itself included). The relation type is (speaker of i, speaker of j,
       i before j or not). Edge weights, as the authors' code computes them: alpha_ij =
       softmax over i's window of w_{p(i)} . g_j, where w_p is the row of a learnt
       ``max_seq_len x 2 D_e`` map for i's position p(i) in its dialogue.
    3. A relational graph convolution h_j = sum_i alpha_ij W_r g_i + W_0 g_j + b (a sum, as
       PyG 1.x did), then a ``GraphConv`` layer (unweighted sum over the same edges + root).
    4. The classifier (linear, ReLU, dropout, linear) reads [g_i; h_i]; with
       ``nodal_attention`` it reads instead the attention pool over all utterances of the
       dialogue, scores tanh((W f_t + b) . f_s) (eqs. 4-6 as the authors' code has them).
       ``nodal_residual`` (merbench's option, not the authors') sets the node's own
       [g_i; h_i] beside that pool.
    Input: ``features[m]`` ``(B, L, D_m)``, ``speakers`` ``(B, L)``, ``utt_mask`` ``(B, L)``.
    Output: logits ``(B, L, C)``.
    """

    level = "dialogue"
    causal = False

    def __init__(self, dims: dict[str, int], num_outputs: int, *, context_size: int = 100,
                 rnn: str = "lstm", rnn_layers: int = 2, graph_size: int = 100, hidden: int = 100,
                 num_bases: int = 30, window_past: int = 10, window_future: int = 10,
                 max_speakers: int = 9, max_seq_len: int = 110, nodal_attention: bool = True,
                 nodal_residual: bool = False, dropout: float = 0.4) -> None:
        super().__init__(dims, num_outputs)
        if rnn not in RNNS:
            raise MerbenchError(f"model.rnn: expected one of {', '.join(RNNS)}, got {rnn!r}")
        if nodal_residual and not nodal_attention:
            raise MerbenchError("model.nodal_residual: needs model.nodal_attention: true (it sets the node "
                                "beside the nodal attention pool)")
        self.window_past, self.window_future, self.max_speakers = window_past, window_future, max_speakers
        self.max_seq_len, self.nodal_residual = max_seq_len, nodal_residual
        # Paper: text features only in the paper's experiments; merbench concatenates the
        # modality vectors of each utterance (as the authors' code does when multimodal).
        d_utt = sum(dims.values())
        # Paper: a bidirectional GRU; the authors' IEMOCAP command runs their 2-layer bi-LSTM
        # (the default here). merbench packs the dialogues, so padding never enters the
        # backward direction (the authors' run it over the padded batch).
        self.context = RNNS[rnn](d_utt, context_size, num_layers=rnn_layers, bidirectional=True,
                                 batch_first=True, dropout=dropout if rnn_layers > 1 else 0.0)
        d_g = 2 * context_size
        # Paper: eq. 1 scores g_i^T W_e g_j; the authors' code (attn1 of MaskedEdgeAttention)
        # scores w_{p(i)} . g_j with one learnt row per position, which is built here.
        self.edge_score = nn.Linear(d_g, max_seq_len, bias=False)
        self.rgcn = WeightedRGCN(d_g, graph_size, num_relations(max_speakers), num_bases)
        self.graph_conv = GraphConv(graph_size, graph_size)
        d_node = d_g + graph_size
        # "general2" attention of the authors' DialogueGCN code: tanh-bounded scores.
        self.nodal_query = nn.Linear(d_node, d_node) if nodal_attention else None
        d_in = 2 * d_node if nodal_residual else d_node
        # Paper: the authors' classifier hidden size is graph_size (their D_h is unused).
        self.classifier = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, num_outputs))

    def forward(self, batch: Batch) -> Output:
        mask = batch.utt_mask
        check_speakers(batch.speakers, mask, self.max_speakers, "dialoguegcn")
        if mask.shape[1] > self.max_seq_len and bool(mask[:, self.max_seq_len:].any()):
            raise MerbenchError(f"model.max_seq_len: dialoguegcn was built for dialogues of at most "
                                f"{self.max_seq_len} utterances, but the batch has one of "
                                f"{int(mask.sum(1).max())}; set model.max_seq_len to at least that")
        u = torch.cat([batch.features[m] for m in self.modalities], dim=-1)  # (B, L, D_m)
        packed = pack_padded_sequence(u, mask.sum(1).cpu(), batch_first=True, enforce_sorted=False)
        g, _ = pad_packed_sequence(self.context(packed)[0], batch_first=True, total_length=u.shape[1])
        nodes = g[mask]  # (N, 2 D_e): real utterances only
        position = mask.nonzero()[:, 1]  # (N,) each node's place in its dialogue
        # The authors list (node i, neighbour j in i's window) and pass it to PyG as i -> j;
        # that is window_graph's target window with past and future swapped.
        edge_index, edge_type = window_graph(mask, batch.speakers, self.window_future, self.window_past,
                                             self.max_speakers)
        source, target = edge_index
        score = self.edge_score(nodes)[target, position[source]]  # (E,) w_{p(i)} . g_j
        alpha = softmax(score, source, num_nodes=nodes.shape[0])  # over each source's window
        h = self.rgcn(nodes, edge_index, edge_type, alpha)  # (N, graph)
        # Paper: eqs. 2 and 3 wrap each graph layer in an activation; the authors' code applies none.
        h = self.graph_conv(h, edge_index)  # (N, graph)
        features = to_padded(torch.cat([nodes, h], dim=-1), mask)  # (B, L, d_node)
        if self.nodal_query is not None:
            # Paper: eq. 5 scores f_t^T W f_s; the authors' code bounds the score with tanh.
            scores = torch.tanh(self.nodal_query(features) @ features.transpose(1, 2))  # (B, L_t, L_s)
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
            pooled = scores.softmax(-1) @ features  # (B, L, d_node)
            features = torch.cat([pooled, features], dim=-1) if self.nodal_residual else pooled
        return Output(self.classifier(features))


MODELS.register("dialoguegcn", DialogueGCN)
MODELS.register("dialoguegcn_tiny", partial(DialogueGCN, context_size=4, graph_size=6, hidden=5,
                                            num_bases=3, window_past=2, window_future=2), tiny=True)
