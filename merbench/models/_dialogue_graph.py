"""Utterance graphs over a padded dialogue batch, shared by the graph models (DialogueGCN, COGMEN).

Nodes are the real utterances only, numbered in the order of ``utt_mask.nonzero()`` (dialogue
by dialogue, then position); an edge joins two utterances of the same dialogue that lie
within a past / future window of each other, so no message crosses dialogues or touches
padding. Relation types follow DialogueGCN (Ghosal et al., EMNLP 2019) and COGMEN (Joshi et
al., NAACL 2022): the speaker of the source, the speaker of the target, and whether the
source comes before the target, ``2 * max_speakers ** 2`` types in all.
"""

from __future__ import annotations

import torch

from merbench.errors import MerbenchError


def check_speakers(speakers: torch.Tensor, utt_mask: torch.Tensor, max_speakers: int, model: str) -> None:
    """Speaker ids of real utterances must lie in ``0 .. max_speakers - 1``."""
    real = speakers[utt_mask]
    if real.numel() and (int(real.max()) >= max_speakers or int(real.min()) < 0):
        raise MerbenchError(
            f"model.max_speakers: {model} was built for {max_speakers} speakers per dialogue, but the "
            f"batch has speaker index {int(real.max())}; set model.max_speakers to at least "
            f"{int(real.max()) + 1}"
        )


def num_relations(max_speakers: int) -> int:
    return 2 * max_speakers**2


def window_graph(utt_mask: torch.Tensor, speakers: torch.Tensor, past: int, future: int,
                 max_speakers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges ``source -> target`` for every target utterance and each source in its window.

    ``utt_mask`` and ``speakers`` are ``(B, L)``; a window of -1 reaches the dialogue's start
    (past) or end (future). Each utterance is its own neighbour (offset 0), as in both papers'
    code. Returns ``edge_index`` ``(2, E)`` over node numbers and ``edge_type`` ``(E,)``.
    The authors' code lists (node, neighbour) pairs and hands them to PyG as source -> target,
    which mirrors a target's window there; with the default symmetric windows both agree.
    """
    n_dialogues, length = utt_mask.shape
    device = utt_mask.device
    node_id = torch.full((n_dialogues, length), -1, dtype=torch.long, device=device)
    node_id[utt_mask] = torch.arange(int(utt_mask.sum()), device=device)
    past = length - 1 if past < 0 else min(past, length - 1)
    future = length - 1 if future < 0 else min(future, length - 1)
    offsets = torch.arange(-past, future + 1, device=device)  # (K,)
    target_t = torch.arange(length, device=device)
    source_t = target_t[:, None] + offsets[None, :]  # (L, K)
    inside = (source_t >= 0) & (source_t < length)
    source_t = source_t.clamp(0, length - 1)
    # Valid rows of a padded dialogue are a prefix, so a real target and a real source in
    # range are always the same dialogue's utterances.
    valid = utt_mask[:, :, None] & inside[None] & utt_mask[:, source_t]  # (B, L, K)
    b, t, k = valid.nonzero(as_tuple=True)
    s = source_t[t, k]
    edge_index = torch.stack([node_id[b, s], node_id[b, t]])  # (2, E)
    source_not_before = (s >= t).long()  # 0: the source is an earlier utterance
    edge_type = (speakers[b, s] * max_speakers + speakers[b, t]) * 2 + source_not_before  # (E,)
    return edge_index, edge_type


def to_padded(nodes: torch.Tensor, utt_mask: torch.Tensor) -> torch.Tensor:
    """Node rows ``(N, F)`` back to the padded batch ``(B, L, F)``, zeros at padding."""
    where = utt_mask.nonzero(as_tuple=True)
    padded = nodes.new_zeros(*utt_mask.shape, nodes.shape[-1])
    return padded.index_put(where, nodes)
