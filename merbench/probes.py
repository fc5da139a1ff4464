"""Probes: what each component of a trained paper model does on one split of its data.

``probe(run, split)`` rebuilds a finished run's model and data (``merbench.run.Run``), runs the
model over the split and reads, through forward hooks on its modules (no model code changes):

- **HFF**: per utterance and modality, the dynamic weights (Eq. 17-18: the softmax of W_dyn's
  output) and the uncertainty weights (Eq. 19: each modality's precision over the sum of
  precisions), in evaluation mode. On the frames axis a weight is averaged over the
  utterance's ``frame_steps`` steps.
- **HRDF-MER**: per CMDF stage, the sigmoid gate g of ``fused = g * fused + (1 - g) * new``,
  averaged over features per utterance: ``1 - g`` is the share of the incoming modality, g
  that of the fusion so far (evaluation mode).
- **MCN-CL**: the contrastive term (``aux_loss["contrastive"]``: a supervised contrastive loss
  on the fused embedding, the output of ``MCNCL.fusion``, pulling same-label utterances of a
  training batch together and pushing other labels apart), computed in training mode
  (dropout on, no update) over the split in batches of the recipe's training size, and in
  evaluation mode; and the mean cosine similarity of same-label and of different-label pairs
  of utterances of the whole split in that embedding (evaluation mode).

Every per-utterance value is kept in split order (``Probe.per_utterance``), so a caller can
join it with the corpus (e.g. synthetic's ``Dialogue.corrupted``); ``Probe.stats`` holds the
mean, std and count over the split, and ``markdown(probes)`` prints one table per model.
``benchmarks/mosi_components.py`` is the command-line front end.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from merbench.data.batching import Batch, SplitTensors
from merbench.errors import MerbenchError
from merbench.evaluate import EVAL_BATCH
from merbench.models.base import MerModel
from merbench.models.build import model_defaults
from merbench.models.hff import HFF, precision_weights
from merbench.models.hrdf_mer import HRDFMER
from merbench.models.mcn_cl import MCNCL, hard_negative_contrastive
from merbench.run import Run, load_run

FAMILIES = {HFF: "hff", HRDFMER: "hrdf_mer", MCNCL: "mcn_cl"}


@dataclass(frozen=True)
class Stat:
    """Mean and standard deviation (ddof 1; 0 for one value) of ``n`` values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values) -> "Stat":
        values = np.asarray(values, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if not len(values):
            return cls(float("nan"), float("nan"), 0)
        return cls(float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0, len(values))

    def __str__(self) -> str:
        return "n/a" if self.n == 0 else f"{self.mean:.3f} ± {self.std:.3f}"


@dataclass
class Probe:
    """What ``probe`` measured on one run and split; see the module docstring."""

    run: Path
    run_id: str
    model: str  # registry name
    family: str  # hff | hrdf_mer | mcn_cl
    split: str
    utterances: int
    stats: dict[str, Stat] = field(default_factory=dict)  # column -> mean ± std over the split
    per_utterance: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) or (N, M), split order
    modalities: list[str] = field(default_factory=list)  # the order of an (N, M) array's M axis
    setting: str = ""  # the modalities and the model arguments the recipe set to a non-default value
    # HFF on a corpus that records which modalities it corrupted (synthetic's
    # ``Dialogue.corrupted``): column -> (over utterances where the modality was clean, corrupted).
    by_corruption: dict[str, tuple[Stat, Stat]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _Recorder:
    """Forward hooks that keep one tensor per call of each named module, for the current batch."""

    def __init__(self, modules: dict[str, torch.nn.Module]) -> None:
        self.outputs: dict[str, torch.Tensor] = {}
        self.handles = [module.register_forward_hook(self._keep(name)) for name, module in modules.items()]

    def _keep(self, name: str):
        def hook(module, inputs, output):
            self.outputs[name] = output
        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _batches(tensors: SplitTensors, model: MerModel, size: int | None = None):
    """The split in order, on the model's device; evaluation's batch size unless ``size``."""
    level, device = model.level, next(model.parameters()).device
    if size is None:
        size = EVAL_BATCH if level == "utterance" else max(1, EVAL_BATCH // 16)
    for batch in tensors.batches(level, size):
        yield batch.to(device)


def _per_utterance(batch: Batch, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A per-utterance tensor ``(B, [L,] ...)`` and its utterances' flat split index, real ones only."""
    return batch.valid(x).detach().cpu(), batch.valid(batch.index).cpu()


def _in_order(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> np.ndarray:
    values, index = (torch.cat(p) for p in zip(*parts))
    return values[index.argsort()].float().numpy()


# --- HFF ---------------------------------------------------------------------------------

def _hff(run: Run, model: HFF, tensors: SplitTensors, out: Probe) -> None:
    modules = {}
    if model.dynamic_weighting is not None:
        modules["dynamic"] = model.dynamic_weighting
    if model.uncertainty is not None:
        modules["uncertainty"] = model.uncertainty
    recorder = _Recorder(modules)
    parts = defaultdict(list)
    try:
        with torch.no_grad():
            for batch in _batches(tensors, model):
                model(batch)
                if "dynamic" in recorder.outputs:
                    alpha = recorder.outputs["dynamic"].softmax(-1)  # (B, S, M), Eq. 17
                    parts["dynamic_weights"].append(_per_utterance(batch, _steps(model, alpha)))
                if "uncertainty" in recorder.outputs:
                    _, log_var = recorder.outputs["uncertainty"]  # (B, S, M, 1)
                    weights = precision_weights(log_var)[1].squeeze(-1)  # (B, S, M), as HFF._fuse
                    parts["uncertainty_weights"].append(_per_utterance(batch, _steps(model, weights)))
    finally:
        recorder.close()
    dialogues = run.corpus().split(out.split)
    corrupted = None  # (N, M) bool, split order, where the corpus records it
    if dialogues and all(d.corrupted is not None for d in dialogues):
        corrupted = np.stack([np.concatenate([d.corrupted[m] for d in dialogues]) for m in model.modalities], -1)
    for name, label in (("dynamic_weights", "dynamic"), ("uncertainty_weights", "uncertainty")):
        if name in parts:
            values = _in_order(parts[name])  # (N, M)
            out.per_utterance[name] = values
            for i, m in enumerate(model.modalities):
                out.stats[f"{label} {m}"] = Stat.of(values[:, i])
                if corrupted is not None:
                    hit = corrupted[:, i]
                    out.by_corruption[f"{label} {m}"] = (Stat.of(values[~hit, i]), Stat.of(values[hit, i]))
    if model.dynamic_weighting is None:
        out.notes.append("dynamic weighting not built (switched off or one modality): equal weights 1 / M")
    if model.uncertainty is None:
        out.notes.append("uncertainty weighting not built (switched off or one modality): f1 = f0")


def _steps(model: HFF, x: torch.Tensor) -> torch.Tensor:
    """Dialogue axis: a step is an utterance, ``(B, L, M)`` as is. Frames axis: the steps of
    one utterance, averaged: ``(B, S, M) -> (B, M)``."""
    return x if model.time_axis == "dialogue" else x.mean(1)


# --- HRDF-MER ------------------------------------------------------------------------------

def _hrdf_mer(run: Run, model: HRDFMER, tensors: SplitTensors, out: Probe) -> None:
    if model.gate is None:
        out.notes.append("no gated fusion unit (gate off, or one modality): nothing to probe")
        return
    recorder = _Recorder({str(k): gate for k, gate in enumerate(model.gate)})
    parts = defaultdict(list)
    try:
        with torch.no_grad():
            for batch in _batches(tensors, model):
                model(batch)
                for k in range(len(model.gate)):
                    g = torch.sigmoid(recorder.outputs[str(k)]).mean(-1)  # (B, L): mean over features
                    parts[k].append(_per_utterance(batch, g))
    finally:
        recorder.close()
    for k in range(len(model.gate)):
        g = _in_order(parts[k])  # (N,)
        so_far, incoming = "+".join(model.order[: k + 1]), model.order[k + 1]
        out.per_utterance[f"gate_{k + 1}"] = g
        out.stats[f"stage {k + 1}: {so_far} kept (g)"] = Stat.of(g)
        out.stats[f"stage {k + 1}: {incoming} in (1 - g)"] = Stat.of(1.0 - g)
    out.notes.append("stage k: fused = g * fused + (1 - g) * incoming; g and 1 - g averaged over "
                     "features per utterance, then mean ± std over utterances")


# --- MCN-CL ------------------------------------------------------------------------------

def _mcn_cl(run: Run, model: MCNCL, tensors: SplitTensors, out: Probe) -> None:
    recorder = _Recorder({"fused": model.fusion})
    train = run.recipe.train
    size = train.dialogue_batch_size if model.level == "dialogue" else train.batch_size
    try:
        with torch.no_grad():
            # Training mode, as the loop computes the term: dropout on, batches of the training
            # size (the term compares the utterances of one batch), in split order, no update.
            torch.manual_seed(0)
            model.train()
            train_terms, eval_terms, counts = [], [], []
            for batch in _batches(tensors, model, size):
                labels = batch.valid(batch.labels)
                aux = model(batch).aux_loss
                term = aux["contrastive"] if "contrastive" in aux else _contrastive(model, batch, recorder)
                train_terms.append(float(term))
                counts.append(int((labels >= 0).sum()))
            model.eval()
            for batch in _batches(tensors, model, size):
                model(batch)
                eval_terms.append(float(_contrastive(model, batch, recorder)))
            # The embedding of every utterance of the split, for pairs across batches.
            parts, label_parts = [], []
            for batch in _batches(tensors, model):
                model(batch)
                parts.append(_per_utterance(batch, recorder.outputs["fused"]))
                label_parts.append(_per_utterance(batch, batch.labels))
    finally:
        recorder.close()
        model.eval()
    weights = np.asarray(counts, dtype=np.float64)
    if weights.sum() > 0:
        # Weighted by labelled utterances per batch, as the training loop averages its loss.
        for mode, terms in (("training", train_terms), ("evaluation", eval_terms)):
            spread = Stat.of(terms)  # the std over batches
            out.stats[f"contrastive ({mode} mode)"] = Stat(float(np.average(terms, weights=weights)),
                                                           spread.std, spread.n)
    embedding = _in_order(parts)  # (N, H)
    labels = _in_order(label_parts).astype(np.int64)  # (N,)
    out.per_utterance["embedding"] = embedding
    out.per_utterance["labels"] = labels
    same, different = pair_cosines(embedding, labels)
    out.stats["cos same label"] = Stat.of(same)
    out.stats["cos different label"] = Stat.of(different)
    if not model.contrastive:
        out.notes.append("trained without the contrastive term: its value is computed, not optimised")
    out.notes.append("contrastive: mean over batches of the training size (± std over batches); cos: "
                     "mean ± std over pairs of utterances of the split (evaluation mode)")


def _contrastive(model: MCNCL, batch: Batch, recorder: _Recorder) -> torch.Tensor:
    """The term ``MCNCL.forward`` adds, on the embedding of the batch just run."""
    fused = recorder.outputs["fused"]  # (B, L, H)
    return hard_negative_contrastive(fused[batch.utt_mask], batch.labels[batch.utt_mask], model.temperature,
                                     model.hardest)


def pair_cosines(embedding: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of every pair of distinct labelled utterances, split by whether the two
    share a label: ``(same, different)``, each a flat array (each unordered pair once)."""
    keep = labels >= 0
    z = torch.nn.functional.normalize(torch.as_tensor(embedding[keep], dtype=torch.float64), dim=-1)
    y = torch.as_tensor(labels[keep])
    upper = torch.triu(torch.ones(len(y), len(y), dtype=torch.bool), diagonal=1)
    sim = z @ z.T  # (N, N)
    same = y[:, None] == y[None, :]
    return sim[upper & same].numpy(), sim[upper & ~same].numpy()


# --- Entry points ---------------------------------------------------------------------------

PROBES = {"hff": _hff, "hrdf_mer": _hrdf_mer, "mcn_cl": _mcn_cl}


def probe(run: Run | str | Path, split: str = "test", device: str = "cpu") -> Probe:
    """Probe the finished ``run`` (a ``Run`` or its folder) on ``split``; see the module docstring."""
    if not isinstance(run, Run):
        run = load_run(run)
    model, _ = run.scoring_model(device)
    family = next((name for cls, name in FAMILIES.items() if isinstance(model, cls)), None)
    if family is None:
        raise MerbenchError(f"{run.path}: no probe for model {run.model_name!r} "
                            f"(probes exist for {', '.join(FAMILIES.values())} and their variants)")
    tensors = run.tensors(split)
    out = Probe(run.path, run.run_id, run.model_name, family, split, tensors.size,
                modalities=list(model.modalities), setting=_setting(run))
    model.eval()
    PROBES[family](run, model, tensors, out)
    return out


def _setting(run: Run) -> str:
    """``audio+text+vision; objective=paper``: what tells runs of one model apart in a table."""
    defaults = model_defaults(run.model_name)
    args = [f"{k}={_yaml(v)}" for k, v in run.recipe.model.args.items() if k not in defaults or defaults[k] != v]
    return "; ".join(["+".join(run.dataset.modalities)] + ([" ".join(args)] if args else []))


def _yaml(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def markdown(probes: list[Probe]) -> str:
    """One Markdown table per model family: a row per run, a column per statistic (mean ± std),
    then the notes of those runs once each."""
    blocks = []
    for family in dict.fromkeys(p.family for p in probes):
        rows = sorted((p for p in probes if p.family == family), key=lambda p: (p.setting, p.run.name))
        columns = list(dict.fromkeys(c for p in rows for c in p.stats))
        lines = [f"### {family} ({rows[0].split})", "",
                 "| run | model | setting | N | " + " | ".join(columns) + " |",
                 "|---|---|---|---|" + "---|" * len(columns)]
        for p in rows:
            cells = [str(p.stats[c]) if c in p.stats else "" for c in columns]
            lines.append(f"| {p.run.name} | {p.model} | {p.setting} | {p.utterances} | " + " | ".join(cells) + " |")
        split_rows = [p for p in rows if p.by_corruption]
        if split_rows:
            columns = list(dict.fromkeys(c for p in split_rows for c in p.by_corruption))
            lines += ["", "Mean weight where the corpus left the modality clean / where it corrupted it:", "",
                      "| run | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
            for p in split_rows:
                cells = [f"{p.by_corruption[c][0].mean:.3f} / {p.by_corruption[c][1].mean:.3f}"
                         if c in p.by_corruption else "" for c in columns]
                lines.append(f"| {p.run.name} | " + " | ".join(cells) + " |")
        notes = list(dict.fromkeys(n for p in rows for n in p.notes))
        if notes:
            lines += [""] + [f"- {n}" for n in notes]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
