"""A folder written by ``merbench finetune``, as extraction reads it: its record file, the
names of its cross-fitted encoders, what extraction gives the other splits. The fine-tuning
itself is ``merbench.features.finetune``; the text extractors read folders through this module."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from merbench.errors import MerbenchError

RECORD = "merbench_finetune.json"
# What extraction gives valid / test of a cross-fitted folder: the encoder on all training
# dialogues, or the mean of the K fold encoders (the extractor's and the CLI's crossfit_eval).
CROSSFIT_EVAL = ("full", "mean")


def fold_names(k: int) -> list[str]:
    """The sub-folders of a cross-fitted folder's K fold encoders: fold-1 ... fold-K."""
    return [f"fold-{i + 1}" for i in range(k)]


@dataclass
class FinetuneRecord:
    """The part of a fine-tuned folder's record that extraction reads."""

    context: int
    max_length: int
    crossfit: int
    folds: list[list[str]] = field(default_factory=list)  # crossfit: training dialogue ids per fold
    has_full: bool = True  # crossfit: the encoder on all training dialogues was fine-tuned too

    def fold_names(self) -> list[str]:
        return fold_names(len(self.folds))

    def encoder_names(self) -> list[str]:
        return [*self.fold_names(), *(["full"] if self.has_full else [])]

    def fold_of_dialogue(self) -> dict[str, str]:
        return {d: name for name, ids in zip(self.fold_names(), self.folds) for d in ids}


def read_record(path: str | Path) -> FinetuneRecord | None:
    """The record of a ``merbench finetune`` folder, or None for any other directory."""
    file = Path(path).expanduser() / RECORD
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
        options = data["options"]
        return FinetuneRecord(int(options["context"]), int(options["max_length"]),
                              int(options["crossfit"]), [list(f) for f in data.get("folds", [])],
                              "full" in data.get("encoders", {"full": None}))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise MerbenchError(f"{file}: not a merbench fine-tuning record ({err})") from None
