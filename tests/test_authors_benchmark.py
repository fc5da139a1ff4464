"""benchmarks/authors/: the shims that let the authors' DialogueGCN run on torch 2 / PyG 2.

None of these needs the authors' code except the last, which runs only when
MERBENCH_CONV_EMOTION names a checkout of github.com/declare-lab/conv-emotion.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("torch_geometric")
AUTHORS = Path(__file__).resolve().parents[1] / "benchmarks" / "authors"


def _load(name: str):
    if str(AUTHORS) not in sys.path:
        sys.path.insert(0, str(AUTHORS))
    spec = importlib.util.spec_from_file_location(f"authors_{name}", AUTHORS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # PyG's MessagePassing inspects its class's module
    spec.loader.exec_module(module)
    return module


def test_rgcn_shim_is_pyg13_per_edge_sum_and_merbench_layer():
    from merbench.models.dialoguegcn import WeightedRGCN

    shims = _load("shims")
    torch.manual_seed(0)
    layer = shims.RGCNConvPyG13(6, 5, 8, 3)
    x, norm = torch.randn(7, 6), torch.rand(20)
    edges, types = torch.randint(0, 7, (2, 20)), torch.randint(0, 8, (20,))
    # PyG 1.3.2's arithmetic: one W_r per edge, x_source W_r times edge_norm, summed at the target.
    w = (layer.att @ layer.basis.view(3, -1)).view(8, 6, 5)[types]
    messages = torch.bmm(x[edges[0]].unsqueeze(1), w).squeeze(1) * norm[:, None]
    expected = torch.zeros(7, 5).index_add(0, edges[1], messages) + x @ layer.root + layer.bias
    assert torch.allclose(layer(x, edges, types, norm), expected, atol=1e-6)
    ours = WeightedRGCN(6, 5, 8, 3)
    ours.load_state_dict({k: getattr(layer, k) for k in ("basis", "att", "root", "bias")})
    assert torch.allclose(ours(x, edges, types, norm), expected, atol=1e-6)


def test_numpy_shim_indexes_as_torch1():
    shims = _load("shims")
    np_ = shims._NumpyForTorch1Indexing()
    mask = torch.zeros(2, 3, 4)
    mask[np_.array([[0, 1, 3], [1, 2, 0]]).transpose()] = 1  # the authors' (batch, node, neighbour) rows
    assert mask.nonzero().tolist() == [[0, 1, 3], [1, 2, 0]]
    assert np_.arange(3).tolist() == [0, 1, 2]


@pytest.mark.skipif(not os.environ.get("MERBENCH_CONV_EMOTION"),
                    reason="MERBENCH_CONV_EMOTION (a conv-emotion checkout) is not set")
def test_authors_models_run_one_batch(tmp_path):
    from merbench.data.synthetic import synthetic

    run = _load("run")
    corpus = synthetic(n_dialogues=6, n_utterances=40)
    for model in ("dialoguegcn", "dialoguernn"):
        result = run.train_authors(Path(os.environ["MERBENCH_CONV_EMOTION"]), model, corpus, 0, 1, tmp_path / model)
        assert result["epochs_run"] == 1 and 0 <= result["test_wf1"] <= 100
