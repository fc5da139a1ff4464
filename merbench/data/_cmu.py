"""Rules of the CMU sentiment corpora (CMU-MOSEI, CMU-MOSI) shared by the MMSA-pickle and SDK
``.csd`` formats of both: the sentiment target, its classes, and each release's facts.

Task "regression": ``value`` = sentiment in [-3, 3]. ``label`` = the ACC-7 bin
``round(clip(value, -3, 3)) + 3`` (numpy rounding, half to even, as MulT's ACC-7), so that
label-aware losses (contrastive, class weights) have classes. Label names "-3" .. "3".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from merbench.data._common import check_fold, choose
from merbench.errors import MerbenchError

LABEL_SETS = {"sentiment": [str(v) for v in range(-3, 4)]}
PROTOCOLS = ("standard",)
# Emotion intensities of the MOSEI Labels csd after sentiment, in file order (0..3 each).
EMOTIONS = ["happy", "sad", "anger", "surprise", "disgust", "fear"]


@dataclass(frozen=True)
class Release:
    """One corpus's facts its readers check against: dataset name, the clips per split of its
    standard folds, what those counts come from, and the folds when merbench ships them."""

    name: str
    counts: dict[str, int]
    reference: str
    folds: dict[str, tuple[str, ...]] | None = None


# The SDK's standard CMU-MOSI folds (mmsdk/mmdatasdk/dataset/standard_datasets/CMU_MOSI/
# cmu_mosi_std_folds.py: standard_train_fold, standard_valid_fold, standard_test_fold),
# 52 / 10 / 31 videos. On the 2,199 utterances of CMU-MOSI they give MMSA's 1,284 / 229 / 686.
MOSI_FOLDS = {split: tuple(ids.split()) for split, ids in {
    "train": """
        2iD-tVS8NPw 8d-gEyoeBzc Qr1Ca94K55A Ci-AH39fi3Y 8qrpnFRGt2A Bfr499ggo-0 QN9ZIUWUXsY
        9T9Hf74oK10 7JsX8y1ysxY 1iG0909rllw Oz06ZWiO20M BioHAh1qJAQ 9c67fiY0wGQ Iu2PFX3z_1s
        Nzq88NnDkEk Clx4VXItLTE 9J25DZhivz8 Af8D0E4ZXaw TvyZBvOMOTc W8NXH0Djyww 8OtFthrtaJM
        0h-zjBukYpk Vj1wYRQjB-o GWuJjcEuzt8 BI97DNYfe5I PZ-lDQFboO8 1DmNV9C1hbY OQvJTdtJ2H4
        I5y0__X72p0 9qR7uwkblbs G6GlGvlkxAQ 6_0THN4chvY Njd1F0vZSm4 BvYR0L6f2Ig 03bSnISJMiM
        Dg_0XKD0Mf4 5W7Z1C_fDaE VbQk4H8hgr0 G-xst2euQUc MLal-t_vJPM BXuRRbG0Ugk LSi-o-IrDMs
        Jkswaaud0hk 2WGyTLYerpo 6Egk_28TtTM Sqr0AcuoNnk POKffnXeBds 73jzhE8R1TQ OtBXNcAL_lE
        HEsqda8_d0Q VCslbP0mgZI IumbAb8q2dM
    """,
    "valid": """
        WKA5OygbEKI c5xsKMxpXnc atnd_PF-Lbs bvLlb-M3UXU bOL9jKpeJRs _dI--eQ6qVU ZAIRrfG22O0
        X3j2zQgwYgE aiEXnCPZubE ZUXBRvtny7o
    """,
    "test": """
        tmZoasNr4rU zhpQhgha_KU lXPQBPVc5Cw iiK8YX8oH1E tStelxIAHjw nzpVDcQ0ywM etzxEpPuc6I
        cW1FSBF59ik d6hH302o4v8 k5Y_838nuGo pLTX3ipuDJI jUzDDGyPkXU f_pcplsH_V0 yvsjCA6Y5Fc
        nbWiPyCm4g0 rnaNMUZpvvg wMbj6ajWbic cM3Yna7AavY yDtzw_Y-7RU vyB00TXsimI dq3Nf_lMPnE
        phBUpBr1hSo d3_k5Xpfmik v0zCBqDeKcE tIrG4oNLFzE fvVhgmXxadc ob23OKe5a9Q cXypl4FnoZo
        vvZ4IcEtiZc f9O3YtZ2VfI c7UH_rxdZv4
    """,
}.items()}

# Clips per split of the MMSA pickles (aligned_50.pkl / unaligned_50.pkl), the standard folds.
MOSEI = Release("mosei", {"train": 16326, "valid": 1871, "test": 4659}, "the MMSA MOSEI pickles")
MOSI = Release("mosi", {"train": 1284, "valid": 229, "test": 686}, "the MMSA MOSI pickles", MOSI_FOLDS)


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
