"""Score a model on one split (a finished run is re-scored through ``merbench.run.Run.evaluate``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from merbench.data.batching import Batch, SplitTensors
from merbench.data.types import Corpus
from merbench.errors import MerbenchError
from merbench.metrics import classification_metrics, regression_metrics
from merbench.models.base import MerModel
from merbench.run import Predictions

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


def load_checkpoint(path: Path, require: tuple[str, ...] = ("model",)) -> dict:
    """Load with ``weights_only=True`` (a file crafted to run code is refused); a missing,
    corrupt or foreign file, or one without the ``require``d entries, is a one-line user error.
    torch's own warnings about the file are not shown: the error line says what is wrong."""
    if not path.exists():
        raise MerbenchError(f"{path}: no such checkpoint (is the run folder complete?)")
    if path.is_dir():
        raise MerbenchError(f"{path}: is a folder, expected a checkpoint file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged or unsafe file
        raise MerbenchError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    missing = [k for k in require if not isinstance(state, dict) or k not in state]
    if missing:
        raise MerbenchError(f"{path}: not a checkpoint this command can use (no {', '.join(missing)}; "
                            f"a best.pt holds only the model, a last.pt also the optimizer state)")
    return state
