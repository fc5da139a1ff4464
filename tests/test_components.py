"""``active_components(modalities)`` tells the truth, for every registered model and modality subset.

A switch the declaration leaves out builds nothing: turning it off gives the same parameters
(shapes and values, same seed) and the same outputs and losses. A switch it names builds
something: turning it off changes the parameters, the outputs or the training losses.
``result.json`` records the declaration (``model.active_components``, ``inactive_components``)
and tables mark the cells it leaves short, so a wrong one would mislabel results.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from merbench.data.batching import split_tensors
from merbench.data.types import MODALITIES
from merbench.models.build import build_model, built_components, model_class, model_defaults
from merbench.registry import MODELS

TINY = [e.name for e in MODELS.entries() if e.meta.get("tiny")]
SUBSETS = [c for r in (1, 2, 3) for c in itertools.combinations(MODALITIES, r)]
CASES = [(name, subset, switch) for name in TINY for subset in SUBSETS for switch in model_class(name).components]


def _all_on(name: str) -> dict:
    """Every switch on (a switch that defaults off set on), as ``ablate``'s full model."""
    defaults = model_defaults(name)
    return {s: True for s in model_class(name).components if defaults.get(s) is not True}


def _run(name, view, args):
    """Parameters and, with seeded dropout, the training-mode logits and aux losses of one batch."""
    torch.manual_seed(0)
    model = build_model(name, view.dims, len(view.label_names), **args)
    tensors = split_tensors(view, "train", want_frames=type(model).inputs == "frames")
    batch = next(tensors.batches(model.level, 6 if model.level == "dialogue" else 36))
    model.train()
    torch.manual_seed(1)
    out = model(batch)
    return dict(model.named_parameters()), out.logits.detach(), {k: v.detach() for k, v in out.aux_loss.items()}


def _same(a, b) -> bool:
    params_a, logits_a, aux_a = a
    params_b, logits_b, aux_b = b
    return (params_a.keys() == params_b.keys()
            and all(params_a[k].shape == params_b[k].shape and torch.equal(params_a[k], params_b[k]) for k in params_a)
            and torch.equal(logits_a, logits_b)
            and aux_a.keys() == aux_b.keys() and all(torch.equal(aux_a[k], aux_b[k]) for k in aux_a))


def test_every_model_declares_a_subset_of_its_switches_in_order():
    for name in TINY:
        cls = model_class(name)
        for subset in SUBSETS:
            active = cls.active_components(subset)
            assert isinstance(active, tuple)
            assert list(active) == [c for c in cls.components if c in active], (name, subset)


@pytest.mark.parametrize("name, subset, switch", CASES, ids=lambda v: "+".join(v) if isinstance(v, tuple) else str(v))
def test_active_components_is_what_the_constructor_builds(name, subset, switch, tiny_corpus):
    view = tiny_corpus.select_modalities(list(subset))
    full = _all_on(name)
    on, off = _run(name, view, full), _run(name, view, {**full, switch: False})
    params_on, params_off = on[0], off[0]
    shapes_equal = ({k: p.shape for k, p in params_on.items()} == {k: p.shape for k, p in params_off.items()})
    if switch in model_class(name).active_components(subset):
        assert not _same(on, off), f"{name} on {'+'.join(subset)}: '{switch}' is declared active but builds nothing"
    else:
        assert shapes_equal, f"{name} on {'+'.join(subset)}: '{switch}' is declared inactive but changes parameters"
        assert _same(on, off), f"{name} on {'+'.join(subset)}: '{switch}' is declared inactive but changes the model"


def test_built_components_splits_the_switches_that_are_on():
    # HRDF-MER on text alone: a plain Transformer; HFE is built, the fusion components are not.
    assert built_components("hrdf_mer", ["text"], {}) == (["hfe"], ["caa", "cmdf", "gate", "clc_loss"])
    assert built_components("hrdf_mer", ["text", "vision"], {"gate": False}) == (["hfe", "cmdf", "clc_loss"], ["caa"])
    assert built_components("mcn_cl", ["audio"], {"contrastive": False}) == (["hard_negative"], ["triple_query"])
    assert built_components("hff", ["audio", "text"], {}) == (list(model_class("hff").components), [])
    assert built_components("mlp", ["text"], {}) == ([], [])
