"""DialogueGCN: a speaker- and position-aware relational graph over a conversation (Ghosal et
al., EMNLP 2019, "DialogueGCN: A Graph Convolutional Neural Network for Emotion Recognition in
Conversation"); defaults from the authors' code and IEMOCAP command (declare-lab/conv-emotion,
DialogueGCN: sequential size 100 per direction, graph size 100, classifier size 100, 30 RGCN
bases, windows of 10 past and 10 future utterances, nodal attention, dropout 0.4)."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch_geometric.nn import GraphConv, RGCNConv
from torch_geometric.utils import softmax

from merbench.data.batching import Batch
from merbench.errors import MerbenchError
from merbench.models._dialogue_graph import check_speakers, num_relations, to_padded, window_graph
from merbench.models.base import MerModel, Output
from merbench.registry import MODELS

RNNS = {"gru": nn.GRU, "lstm": nn.LSTM}


class DialogueGCN(MerModel):
    """Sequential context (bi-GRU), then a two-layer graph network over each dialogue's window.

    1. A bidirectional RNN over each dialogue gives g_i (sequential context).
    2. Edges join utterances at most ``window_past`` before / ``window_future`` after each
       other; the relation type is (speaker of j, speaker of i, j before i or not). Edge
       weights alpha_ij = softmax_j(g_i^T W_e g_j) over i's window (eq. 1).
    3. An RGCN layer h_i = sum_r sum_j alpha_ij / c_ir W_r g_j + W_0 g_i (eq. 2), then a
       GraphConv layer (eq. 3).
    4. The classifier reads [g_i; h_i], after attention over all utterances of the dialogue
       when ``nodal_attention`` (eqs. 4-6).
    Input: ``features[m]`` ``(B, L, D_m)``, ``speakers`` ``(B, L)``, ``utt_mask`` ``(B, L)``.
    Output: logits ``(B, L, C)``.
    """

    level = "dialogue"
    causal = False

    def __init__(self, dims: dict[str, int], num_outputs: int, *, context_size: int = 100,
                 rnn: str = "gru", rnn_layers: int = 2, graph_size: int = 100, hidden: int = 100,
                 num_bases: int = 30, window_past: int = 10, window_future: int = 10,
                 max_speakers: int = 9, nodal_attention: bool = True, dropout: float = 0.4) -> None:
        super().__init__(dims, num_outputs)
        if rnn not in RNNS:
            raise MerbenchError(f"model.rnn: expected one of {', '.join(RNNS)}, got {rnn!r}")
        self.window_past, self.window_future, self.max_speakers = window_past, window_future, max_speakers
        # Paper: text features only in the paper's experiments; merbench concatenates the
        # modality vectors of each utterance (as the authors' code does when multimodal).
        d_utt = sum(dims.values())
        # Paper: a bidirectional GRU; the authors' IEMOCAP command uses their 2-layer bi-LSTM
        # (rnn: lstm). Both are packed here, so padding never enters the backward direction.
        self.context = RNNS[rnn](d_utt, context_size, num_layers=rnn_layers, bidirectional=True,
                                 batch_first=True, dropout=dropout if rnn_layers > 1 else 0.0)
        d_g = 2 * context_size
        # Paper: eq. 1, bilinear scores g_i^T W_e g_j. The authors' code scores with a linear
        # map to 110 positions instead, which ties the model to dialogues of <= 110 utterances.
        self.edge_score = nn.Linear(d_g, d_g, bias=False)
        self.rgcn = RGCNConv(d_g, graph_size, num_relations(max_speakers), num_bases=num_bases)
        self.graph_conv = GraphConv(graph_size, graph_size)
        d_node = d_g + graph_size
        # "general2" attention of the authors' code: score(h_s, h_t) = h_s . (W h_t + b).
        self.nodal_query = nn.Linear(d_node, d_node) if nodal_attention else None
        self.classifier = nn.Sequential(nn.Linear(d_node, hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, num_outputs))

    def forward(self, batch: Batch) -> Output:
        mask = batch.utt_mask
        check_speakers(batch.speakers, mask, self.max_speakers, "dialoguegcn")
        u = torch.cat([batch.features[m] for m in self.modalities], dim=-1)  # (B, L, D_m)
        packed = pack_padded_sequence(u, mask.sum(1).cpu(), batch_first=True, enforce_sorted=False)
        g, _ = pad_packed_sequence(self.context(packed)[0], batch_first=True, total_length=u.shape[1])
        nodes = g[mask]  # (N, 2 D_e): real utterances only
        edge_index, edge_type = window_graph(mask, batch.speakers, self.window_past, self.window_future,
                                             self.max_speakers)
        source, target = edge_index
        score = (self.edge_score(nodes)[target] * nodes[source]).sum(-1)  # (E,)
        alpha = softmax(score, target, num_nodes=nodes.shape[0])  # over each target's window
        # RGCNConv takes no edge weights, so each edge gets its own source row alpha_ij g_j
        # (a bipartite graph edges -> utterances); its per-relation mean gives the 1 / c_ir.
        # Paper: the self term is alpha_ii W_0 g_i; here, as in the authors' code, the root
        # term W_0 g_i is unweighted and the self-edge i -> i carries alpha_ii.
        weighted = alpha.unsqueeze(-1) * nodes[source]  # (E, 2 D_e)
        edge_to_target = torch.stack([torch.arange(len(target), device=u.device), target])
        h = self.rgcn((weighted, nodes), edge_to_target, edge_type)  # (N, graph)
        # Paper: eqs. 2 and 3 wrap each graph layer in an activation; the authors' code applies none.
        h = self.graph_conv(h, edge_index)  # (N, graph)
        features = to_padded(torch.cat([nodes, h], dim=-1), mask)  # (B, L, d_node)
        if self.nodal_query is not None:
            scores = self.nodal_query(features) @ features.transpose(1, 2)  # (B, L_t, L_s)
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
            features = scores.softmax(-1) @ features
        return Output(self.classifier(features))


MODELS.register("dialoguegcn", DialogueGCN)
MODELS.register("dialoguegcn_tiny", partial(DialogueGCN, context_size=4, graph_size=6, hidden=5,
                                            num_bases=3, window_past=2, window_future=2), tiny=True)
