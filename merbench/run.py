"""A finished run read back from its folder: the one ``Run`` type.

``load_run(path)`` reads ``result.json`` (nothing else, no torch): the result, the resolved
recipe, the metrics per split. From there a ``Run`` gives what every consumer of finished
runs needs, each in one place:

- ``predictions(split)``: the predictions saved at the end of training (``predictions.npz``);
- ``model()``: the model with its best weights, built from the run folder alone (the model's
  name and arguments from the recipe, feature dims, label names and output size from
  ``result.json``, weights from ``checkpoints/best.pt``); the corpus is not read;
- ``corpus()`` / ``tensors(split)``: the data again, checked against the fingerprint the run
  was trained on (re-scoring, robustness and latency need the inputs);
- ``evaluate(split, transform=...)``: every metric of a split, re-scored from the best
  checkpoint; ``transform`` alters each batch (robustness).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from merbench import run_folder
from merbench.aggregate import collect, modality_label
from merbench.errors import MerbenchError
from merbench.predictions import Predictions
from merbench.recipe import SPLITS, Recipe, read_back, validate
from merbench.results import DatasetInfo, ModelInfo, Result, Selection, load_arrays, read_result

if TYPE_CHECKING:  # torch-importing types, for annotations only
    import torch

    from merbench.data.batching import SplitTensors
    from merbench.data.types import Corpus
    from merbench.models.base import MerModel


@dataclass
class Run:
    """One run folder and its ``result.json``, typed; see the module docstring."""

    path: Path  # the run folder
    result: Result  # result.json's record (it also reads as the file's mapping)
    run_id: str
    status: str  # ok | failed
    error: str | None
    seed: int
    # The resolved recipe as result.json holds it (``recipe.data``, also read as that mapping),
    # typed by ``recipe.read_back``: not validated again, so an old file still reads.
    recipe: Recipe
    dataset: DatasetInfo
    model_info: ModelInfo
    selection: Selection
    seconds: float | None  # wall time of the training loop
    metrics: dict[str, dict[str, Any]]  # split -> metric -> value (confusion: a list of lists)
    _corpus: Any = field(default=None, repr=False, compare=False)
    _scoring: dict = field(default_factory=dict, repr=False, compare=False)  # device -> model

    def __repr__(self) -> str:
        """One line: folder, model on dataset and modalities, seed, status and the test score
        of the selection metric (``Run.result`` holds everything)."""
        score = self.metrics.get("test", {}).get(self.selection.metric)
        shown = f", test {self.selection.metric} {score:.4g}" if isinstance(score, (int, float)) else ""
        return (f"Run({str(self.path)!r}, {self.model_info.name} on {self.dataset.name} "
                f"[{modality_label(self.dataset.modalities)}], seed {self.seed}, {self.status}{shown})")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def model_name(self) -> str:
        return self.model_info.name

    def scores(self, split: str = "test") -> dict[str, float]:
        """The numeric metrics of ``split`` (the confusion matrix left out)."""
        return {k: v for k, v in self.metrics.get(split, {}).items() if isinstance(v, (int, float))}

    # --- Saved outputs ----------------------------------------------------------------------

    def require_ok(self, what: str) -> None:
        if not self.ok:
            raise MerbenchError(f"{self.path}: the run failed ({self.error}); {what}")

    def predictions(self, split: str = "test") -> Predictions:
        """The predictions saved when the run finished (best checkpoint, in split order)."""
        self.require_ok("it has no predictions")
        path = self.path / run_folder.PREDICTIONS
        data = load_arrays(path, "the run's predictions")
        keys = [f"{split}_{k}" for k in ("index", "labels", "values", "outputs")]
        if any(k not in data for k in keys):
            have = sorted({k.split("_")[0] for k in data})
            raise MerbenchError(f"{path}: no {split!r} predictions (it holds {', '.join(have) or 'none'})")
        index, labels, values, outputs = (data[k] for k in keys)
        self._check_predictions(path, split, index, labels, values, outputs)
        return Predictions(index, labels, values, outputs)

    def _check_predictions(self, path: Path, split: str, index: np.ndarray, labels: np.ndarray,
                           values: np.ndarray, outputs: np.ndarray) -> None:
        """One line naming the array unless the arrays fit this run: one entry per utterance,
        ``(N, classes)`` finite outputs (``(N,)`` for regression), class ids of its label set."""
        n = len(index) if index.ndim == 1 else -1
        classes = self.model_info.num_outputs
        expected = (n, classes) if self.dataset.task == "classification" else (n,)
        for name, array, shape in (("index", index, (n,)), ("labels", labels, (n,)), ("values", values, (n,)),
                                   ("outputs", outputs, expected)):
            if n < 0 or array.shape != shape:
                raise MerbenchError(f"{path}: {split}_{name} has shape {array.shape}; expected "
                                    f"{shape if n >= 0 else '(N,)'} for this run's {split} split")
        if not (np.issubdtype(outputs.dtype, np.number) and np.isfinite(outputs).all()):
            raise MerbenchError(f"{path}: {split}_outputs holds values that are not finite numbers; "
                                f"expected the model's outputs")
        if self.dataset.task == "classification" and len(labels) and not (
                np.issubdtype(labels.dtype, np.integer) and labels.min() >= -1 and labels.max() < classes):
            raise MerbenchError(f"{path}: {split}_labels holds ids outside -1..{classes - 1}; expected "
                                f"class ids of the run's {classes} labels")

    # --- The model, from the folder alone ----------------------------------------------------

    def model(self, device: str = "cpu") -> "MerModel":
        """The model with its best weights, in eval mode; reads no data."""
        self.require_ok("it has no best checkpoint")
        # start-up: torch only when this runs
        from merbench.evaluate import load_checkpoint
        from merbench.models.build import build_model
        from merbench.device import resolve_device

        model = build_model(self.model_info.name, self.dataset.dims, self.model_info.num_outputs,
                            **self.recipe.model.args)  # as the recipe set them
        best = self.path / run_folder.BEST
        state = load_checkpoint(best)
        try:
            model.load_state_dict(state["model"])
        except (KeyError, RuntimeError) as e:
            raise MerbenchError(f"{best}: does not match model {self.model_info.name!r} "
                                f"({str(e).splitlines()[0][:120]})") from None
        return model.to(resolve_device(device)).eval()

    # --- The data, checked against the run's fingerprint ------------------------------------

    def corpus(self) -> "Corpus":
        """The run's data read again (once per Run); an error if it differs from what it trained on."""
        if self._corpus is None:
            # start-up: torch only when this runs
            from merbench.train import load_corpus

            # validated in full: the data is rebuilt by today's code
            corpus = load_corpus(validate(self.recipe.data, f"{self.path / run_folder.RESULT}: recipe"))
            read, recorded = corpus.data_fingerprint(), self.dataset.fingerprint
            # Runs written before December 2026 recorded the fingerprint of the standardised
            # features: hashed again only for such a run.
            if recorded != read and recorded != corpus.fingerprint():
                raise MerbenchError(f"{self.path}: the data now read differs from the data it was trained on "
                                    f"(fingerprint {read[:12]} != {recorded[:12]})")
            self._corpus = corpus
        return self._corpus

    def tensors(self, split: str = "test") -> "SplitTensors":
        """``split`` of the run's data in the form its model takes (vectors or frames)."""
        # start-up: torch only when this runs
        from merbench.data.batching import split_tensors
        from merbench.models.build import model_class

        if split not in SPLITS:
            raise MerbenchError(f"--split {split}: expected one of {', '.join(SPLITS)}")
        corpus = self.corpus()
        if split not in corpus.split_names():
            raise MerbenchError(f"--split {split}: dataset {corpus.name!r} has no such split")
        return split_tensors(corpus, split, model_class(self.model_info.name).inputs == "frames")

    # --- Scoring again ----------------------------------------------------------------------

    def scoring_model(self, device: str = "cpu") -> tuple["MerModel", "torch.device"]:
        """``model(device)``, built once per Run and device (robustness scores it many times)."""
        if device not in self._scoring:
            model = self.model(device)
            self._scoring[device] = (model, next(model.parameters()).device)
        return self._scoring[device]

    def predict(self, split: str = "test", device: str = "cpu", transform=None,
                tensors: "SplitTensors | None" = None) -> Predictions:
        """Predict ``split`` again with the best weights; ``transform`` may alter each batch."""
        # start-up: torch only when this runs
        import torch

        from merbench.evaluate import predict

        model, dev = self.scoring_model(device)
        torch.manual_seed(0)  # a model with test-time randomness still gives the same numbers
        return predict(model, tensors if tensors is not None else self.tensors(split), dev, transform)

    def evaluate(self, split: str = "test", device: str = "cpu", transform=None,
                 tensors: "SplitTensors | None" = None) -> dict:
        """Every metric of ``split`` re-scored from the best checkpoint (``merbench evaluate``)."""
        # start-up: torch only when this runs
        from merbench.evaluate import score

        preds = self.predict(split, device, transform, tensors)
        return score(self.corpus(), preds)


def from_result(result: Result) -> Run:
    """A ``Run`` of an already read ``result.json`` (``results.read_result``)."""
    return Run(result.run_dir, result, result.run_id, result.status, result.error, result.seed,
               read_back(result.recipe, f"{result.path}: recipe"), result.dataset, result.model, result.selection,
               result.seconds, result.metrics)


def load_run(path: Path | str) -> Run:
    """The run in folder ``path`` (or its ``result.json``); reads that file only."""
    return from_result(read_result(Path(path)))


def find_runs(paths) -> list[Run]:
    """Runs from run folders, result.json files, or folders holding run folders (grids)."""
    return [from_result(r) for r in collect(paths)]
