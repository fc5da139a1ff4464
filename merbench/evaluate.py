"""Score a model on one split (a finished run is re-scored through ``merbench.run.Run.evaluate``)."""

from __future__ import annotations

import torch

from merbench.checkpoints import load_checkpoint  # noqa: F401  (callers import it from here too)
from merbench.data.batching import Batch, SplitTensors
from merbench.data.types import Corpus
from merbench.metrics import classification_metrics, regression_metrics
from merbench.models.base import MerModel
from merbench.predictions import Predictions

EVAL_BATCH = 256  # utterances (or dialogues // 16) per evaluation batch; does not change results


def flat_outputs(batch: Batch, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Real utterances only: (B, [L,] C) -> (N, C), plus their labels, values and index."""
    return batch.valid(logits), batch.valid(batch.labels), batch.valid(batch.values), batch.valid(batch.index)


@torch.no_grad()
def predict(model: MerModel, tensors: SplitTensors, device: torch.device, transform=None) -> Predictions:
    """Run ``model`` over a split in order. ``transform`` may alter each batch (robustness)."""
    model.eval()
    size = EVAL_BATCH if model.level == "utterance" else max(1, EVAL_BATCH // 16)
    parts: list[tuple[torch.Tensor, ...]] = []
    for batch in tensors.batches(model.level, size):
        if transform is not None:
            batch = transform(batch)
        batch = batch.to(device)
        parts.append(tuple(t.cpu() for t in flat_outputs(batch, model(batch).logits)))
    logits, labels, values, index = (torch.cat(p) for p in zip(*parts))
    outputs = logits.squeeze(-1) if logits.shape[-1] == 1 else logits
    return Predictions(index.numpy(), labels.numpy(), values.numpy(), outputs.float().numpy())


def score(corpus: Corpus, preds: Predictions) -> dict:
    if corpus.task == "regression":
        return regression_metrics(preds.values, preds.outputs)
    keep = preds.labels >= 0
    return classification_metrics(preds.labels[keep], preds.predicted_labels()[keep], corpus.label_names)
