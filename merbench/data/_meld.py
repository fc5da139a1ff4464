"""MELD rules shared by its two formats: label sets, the official split, release counts."""

from __future__ import annotations

from merbench.data._common import check_fold, choose

# Ids in the order of the DialogueRNN pickle (declare-lab/conv-emotion, DialogueRNN/dataloader.py).
MELD7 = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
MELD3 = ["neutral", "positive", "negative"]
LABEL_SETS = {"meld7": MELD7, "meld3": MELD3}
PROTOCOLS = ("official",)
# The release: train 1,039 dialogues / 9,989 utterances, dev 114 / 1,109, test 280 / 2,610.
COUNTS = {"train": 9989, "valid": 1109, "test": 2610}
REFERENCE = "the MELD release"


def resolve(fmt: str, labels: str | None, protocol: str | None,
            fold: int | None) -> tuple[str, str]:
    labels = choose(fmt, "labels", labels or "meld7", list(LABEL_SETS))
    protocol = choose(fmt, "protocol", protocol or "official", PROTOCOLS)
    check_fold(fmt, protocol, fold)
    return labels, protocol
