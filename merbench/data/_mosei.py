"""CMU-MOSEI rules shared by its two formats: the sentiment target, classes, release counts.

Task "regression": ``value`` = sentiment in [-3, 3]. ``label`` = the ACC-7 bin
``round(clip(value, -3, 3)) + 3`` (numpy rounding, half to even, as MulT's ACC-7), so that
label-aware losses (contrastive, class weights) have classes. Label names "-3" .. "3".
"""

from __future__ import annotations

import math

import numpy as np

from merbench.data._common import check_fold, choose
from merbench.errors import MerbenchError

LABEL_SETS = {"sentiment": [str(v) for v in range(-3, 4)]}
PROTOCOLS = ("standard",)
# Emotion intensities of the Labels csd after sentiment, in file order (0..3 each).
EMOTIONS = ["happy", "sad", "anger", "surprise", "disgust", "fear"]
# Utterances (clips) of the MMSA pickles aligned_50.pkl / unaligned_50.pkl.
COUNTS = {"train": 16326, "valid": 1871, "test": 4659}
REFERENCE = "the MMSA MOSEI pickles"
# Feature sizes: COVAREP audio, FACET 4.2 vision, BERT (768) or GloVe (300) text.
AUDIO_DIM, VISION_DIM, TEXT_DIMS = 74, 35, (768, 300)


def resolve(fmt: str, labels: str | None, protocol: str | None, fold: int | None) -> tuple[str, str]:
    labels = choose(fmt, "labels", labels or "sentiment", list(LABEL_SETS))
    protocol = choose(fmt, "protocol", protocol or "standard", PROTOCOLS)
    check_fold(fmt, protocol, fold)
    return labels, protocol


def sentiment(value: object, fmt: str, where: str) -> tuple[float, int]:
    """(value, ACC-7 class id) of a sentiment score; an error when it is not in [-3, 3]."""
    try:
        v = float(np.asarray(value, dtype=float).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        v = math.nan
    if not math.isfinite(v) or not -3.0 - 1e-6 <= v <= 3.0 + 1e-6:
        shown = repr(value) if math.isnan(v) else f"{v:g}"
        raise MerbenchError(f"{fmt}: {where} has sentiment {shown}; expected a number in [-3, 3]")
    return v, int(np.round(np.clip(v, -3, 3))) + 3


def clip_key(clip: str) -> tuple:
    return (0, int(clip), "") if clip.isdigit() else (1, 0, clip)
