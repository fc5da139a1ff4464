"""What a model predicted for one split, in split order: written by the training loop and
``evaluate.predict``, read back by ``merbench.run.Run.predictions``. numpy only, no torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Predictions:
    index: np.ndarray  # (N,) flat utterance index within the split
    labels: np.ndarray  # (N,) true class ids (-1 where the corpus has none)
    values: np.ndarray  # (N,) true regression values (NaN when none)
    outputs: np.ndarray  # (N, C) logits, or (N,) regression predictions

    def predicted_labels(self) -> np.ndarray:
        return self.outputs.argmax(-1)
