"""Load the authors' DialogueGCN / DialogueRNN code (declare-lab/conv-emotion) from a checkout
and patch what no longer runs on torch 2.13 / torch_geometric 2.8, without editing their files.

Every patch is applied to the *loaded module's namespace* only (never to torch, numpy or
torch_geometric themselves) and is listed in docs/authors_code.md:

1. ``RGCNConv`` (DialogueGCN/model.py:6, built at :796, called at :806 as
   ``conv1(x, edge_index, edge_type, edge_norm)``): PyG 2.x's ``RGCNConv`` takes no
   ``edge_norm`` and averages the messages per relation; the authors ran PyG 1.3 (their
   README), whose ``RGCNConv`` sums ``edge_norm``-weighted messages. ``RGCNConvPyG13`` below
   is PyG 1.3.2's layer (same parameters, init and arithmetic), computing each relation's
   transform of every node once instead of one in x out matrix per edge (memory).
2. ``np`` (DialogueGCN/model.py:562-564, ``MaskedEdgeAttention`` attn1): ``mask[edge_ind_] = 1``
   with ``edge_ind_ = np.array(edge_ind_).transpose()``, a (3, E) ndarray. torch 1.x treated
   a short ndarray of arrays as a tuple of index arrays (batch, node, neighbour); torch 2.x
   indexes dim 0 with it (an IndexError, or the wrong cells). The module's ``np`` is a proxy
   of numpy whose ``array(...)`` returns an ndarray whose ``transpose()`` gives that tuple.

Their ``.cuda()`` calls need no patch: DialogueGCNModel takes ``no_cuda=True`` (their own
``--no-cuda`` flag, which their README's IEMOCAP command passes); DialogueRNN's model has none.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
import types
from pathlib import Path

import numpy
import torch
from torch import nn

FOLDERS = {"dialoguegcn": "DialogueGCN", "dialoguernn": "DialogueRNN"}


def _message_passing():
    from torch_geometric.nn import MessagePassing

    return MessagePassing


class RGCNConvPyG13(_message_passing()):
    """torch_geometric 1.3.2's ``RGCNConv`` (what the authors ran), on PyG 2's MessagePassing.

    out_j = sum over edges i -> j of edge_norm_ij (x_i W_{r(ij)}) + x_j root + bias, with
    W_r = sum_b att[r, b] basis[b]; aggregation ``add``; every parameter drawn from
    U(-1/sqrt(num_bases * in), +1/sqrt(num_bases * in)) in the order basis, att, root, bias.
    """

    def __init__(self, in_channels: int, out_channels: int, num_relations: int, num_bases: int,
                 root_weight: bool = True, bias: bool = True, **kwargs) -> None:
        super().__init__(aggr="add", **kwargs)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_relations, self.num_bases = num_relations, num_bases
        self.basis = nn.Parameter(torch.empty(num_bases, in_channels, out_channels))
        self.att = nn.Parameter(torch.empty(num_relations, num_bases))
        self.root = nn.Parameter(torch.empty(in_channels, out_channels)) if root_weight else None
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.num_bases * self.in_channels)  # PyG 1.3 inits.uniform(size, t)
        for p in (self.basis, self.att, self.root, self.bias):
            if p is not None:
                p.data.uniform_(-bound, bound)

    def forward(self, x, edge_index, edge_type, edge_norm=None, size=None):
        # PyG 1.3 picked W_{r(e)} per edge and multiplied x_j by it (E x in x out floats);
        # x @ W_r for every relation, then a gather, is the same product.
        w = torch.matmul(self.att, self.basis.view(self.num_bases, -1))
        w = w.view(self.num_relations, self.in_channels, self.out_channels)
        by_relation = torch.einsum("ni,rio->rno", x, w)  # (R, N, out)
        flat = by_relation.reshape(-1, self.out_channels)  # row r * N + n
        size = (x.shape[0], x.shape[0]) if size is None else size
        out = self.propagate(edge_index, size=size, flat=flat, num=x.shape[0], edge_type=edge_type,
                             edge_norm=edge_norm)
        if self.root is not None:
            out = out + torch.matmul(x, self.root)
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, flat, edge_index_j, num, edge_type, edge_norm):
        out = flat[edge_type * num + edge_index_j]  # x_j W_{r(e)}: the source node's transform
        return out if edge_norm is None else out * edge_norm.view(-1, 1)


class _TupleRows(numpy.ndarray):
    """An ndarray whose ``transpose()`` is the tuple of its rows: the index torch 1.x made of it."""

    def transpose(self, *axes):
        return tuple(numpy.asarray(self).transpose(*axes))


class _NumpyForTorch1Indexing(types.ModuleType):
    """numpy, except that ``array(...)`` returns a ``_TupleRows``."""

    def __init__(self) -> None:
        super().__init__("numpy")

    def __getattr__(self, name):
        return getattr(numpy, name)

    @staticmethod
    def array(*args, **kwargs):
        return numpy.array(*args, **kwargs).view(_TupleRows)


def _import(path: Path, name: str) -> types.ModuleType:
    if not path.is_file():
        raise SystemExit(f"--code: {path} not found (expected a checkout of github.com/declare-lab/conv-emotion)")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # both files are called model.py: distinct module names
    spec.loader.exec_module(module)
    return module


def load(code: Path, model: str) -> tuple[types.ModuleType, types.ModuleType]:
    """The authors' ``model.py`` and ``dataloader.py`` of MODEL's folder, with the shims applied."""
    folder = Path(code) / FOLDERS[model]
    tag = f"conv_emotion_{FOLDERS[model].lower()}"
    models = _import(folder / "model.py", f"{tag}_model")
    data = _import(folder / "dataloader.py", f"{tag}_dataloader")
    if model == "dialoguegcn":
        models.RGCNConv = RGCNConvPyG13  # looked up when GraphNetwork is built
        models.np = _NumpyForTorch1Indexing()
    return models, data


def file_sha256(code: Path, model: str) -> str:
    return hashlib.sha256((Path(code) / FOLDERS[model] / "model.py").read_bytes()).hexdigest()


SHIMS = {
    "dialoguegcn": [
        "RGCNConv -> RGCNConvPyG13 (torch_geometric 1.3.2's RGCNConv: edge_norm-weighted sum; PyG 2 takes "
        "no edge_norm and averages per relation)",
        "np.array(...).transpose() -> tuple of index rows in MaskedEdgeAttention (torch 1.x indexing of a "
        "(3, E) ndarray)",
    ],
    "dialoguernn": [],
}
