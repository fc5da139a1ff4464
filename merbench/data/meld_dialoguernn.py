"""MELD in the DialogueRNN features pickle (``MELD_features_raw.pkl``): ships features.

Layout, as declare-lab/conv-emotion's DialogueRNN/dataloader.py (``MELDDataset``) unpacks
it: a 9-tuple (videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoSentence,
trainVid, testVid, videoSentiment); dicts keyed by dialogue id except the two id lists.
Per utterance: a one-hot speaker vector, an emotion id 0..6 (``_meld.MELD7`` order), text
600-d and audio 300-d vectors, the sentence, and a sentiment id 0..2 (``_meld.MELD3``). No
visual features.

The pickle's trainVid holds the release's train and dev dialogues together and there is no
dev list: DialogueRNN trained without validation (``valid=0.0`` in train_MELD.py) and
DialogueGCN took the first 10% of trainVid. Here validation is carved from trainVid as for
IEMOCAP (~10% of dialogues, seeded by name: ``_common.carve_validation``); the test split is
the release's. Speakers are per-dialogue indices in order of first appearance; the one-hot
positions are in ``info["speaker_names"]``. docs/datasets/meld.md describes it for users.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from merbench.data import _meld as meld
from merbench.data._common import (
    NONFINITE, carve_validation, check_modalities, check_per_utterance, choose, feature_array, finish,
    load_tuple_pickle, pickle_path,
)
from merbench.data.types import RawCorpus, RawDialogue, RawUtterance
from merbench.errors import MerbenchError

FORMAT = "meld_dialoguernn"
FILE_NAMES = ("MELD_features_raw.pkl",)
DESCRIPTION = "DialogueRNN features pickle MELD_features_raw.pkl (text 600-d, audio 300-d)"
LOOKS_FOR = "MELD_features_raw.pkl"
TUPLE = ("videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio",
         "videoSentence", "trainVid", "testVid", "videoSentiment")
FEATURES = {"text": (3, 600), "audio": (4, 300)}
# The release's train + dev utterances are both in trainVid.
COUNTS = {"train+valid": meld.COUNTS["train"] + meld.COUNTS["valid"], "test": meld.COUNTS["test"]}


def detect(root: Path) -> bool:
    if root.is_file():
        return root.name.lower() in {n.lower() for n in FILE_NAMES}
    return any((root / n).is_file() for n in FILE_NAMES)


def _class_id(value: object, names: list[str], table: str, path: Path, record: str) -> int:
    try:
        ok = int(value) == value and 0 <= int(value) < len(names)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise MerbenchError(f"{FORMAT}: {path}: {record} has {table} {value!r}; expected an id "
                            f"0..{len(names) - 1} ({', '.join(names)})")
    return int(value)  # type: ignore[call-overload]


def _speaker_position(value: object, path: Path, record: str) -> int:
    vector = np.asarray(value, dtype=float).reshape(-1)
    if vector.size == 0 or np.count_nonzero(vector) != 1:
        raise MerbenchError(f"{FORMAT}: {path}: {record} has speaker {vector.tolist()}; "
                            f"expected a one-hot vector")
    return int(np.argmax(vector))


def _sort_key(dialogue: object) -> tuple:
    return (0, int(dialogue), "") if str(dialogue).isdigit() else (1, 0, str(dialogue))


def read_meld_dialoguernn(root: Path, *, labels: str | None = None, protocol: str | None = None,
                          fold: int | None = None, modalities: Sequence[str] = (),
                          nonfinite: str = "error") -> RawCorpus:
    """Read the DialogueRNN MELD pickle at ``root`` (the file, or a folder holding it)."""
    labels, protocol = meld.resolve(FORMAT, labels, protocol, fold)
    if "vision" in check_modalities(FORMAT, modalities):
        raise MerbenchError(f"{FORMAT}: the pickle ships text and audio features only; vision "
                            f"was asked (read MELD.Raw with format meld_raw for video)")
    choose(FORMAT, "nonfinite", nonfinite, NONFINITE)
    path = pickle_path(Path(root), FILE_NAMES, FORMAT)
    data = load_tuple_pickle(path, FORMAT, TUPLE)
    tables = {name: item for name, item in zip(TUPLE, data) if name not in ("trainVid", "testVid")}
    for name, item in tables.items():
        if not isinstance(item, dict):
            raise MerbenchError(f"{FORMAT}: {path}: {name} is a {type(item).__name__}; "
                                f"expected a dict keyed by dialogue id")
    train_ids, test_ids = list(data[6]), list(data[7])
    emotions = tables["videoLabels"]
    if set(train_ids) & set(test_ids) or set(train_ids) | set(test_ids) != set(emotions):
        bad = sorted(map(str, (set(train_ids) & set(test_ids))
                         | (set(emotions) ^ (set(train_ids) | set(test_ids)))))
        raise MerbenchError(f"{FORMAT}: {path}: dialogue {bad[0]!r} is not in exactly one of "
                            f"trainVid / testVid; expected every labelled dialogue in one")
    valid = carve_validation([str(d) for d in train_ids])
    test = set(test_ids)

    fixed: dict[str, int] = {}
    speaker_names: dict[str, list[str]] = {}
    dialogues = []
    for d in sorted(emotions, key=_sort_key):
        n, name = len(emotions[d]), str(d)
        check_per_utterance(FORMAT, path, tables, d, n)
        arrays = {m: feature_array(data[pos][d], FORMAT, path, f"dialogue {d!r}", m, (dim,), 2,
                                   nonfinite, fixed)
                  for m, (pos, dim) in FEATURES.items()}  # (L, D)
        order: list[int] = []
        utterances = []
        for i in range(n):
            record = f"dialogue {d!r} utterance {i}"
            emotion = _class_id(emotions[d][i], meld.MELD7, "emotion", path, record)
            sentiment = _class_id(tables["videoSentiment"][d][i], meld.MELD3, "sentiment", path, record)
            text = tables["videoSentence"][d][i]
            if not isinstance(text, str) or not text.strip():
                raise MerbenchError(f"{FORMAT}: {path}: {record} has no transcript in videoSentence")
            position = _speaker_position(tables["videoSpeakers"][d][i], path, record)
            if position not in order:
                order.append(position)
            utt_id = tables["videoIDs"][d][i]
            utterances.append(RawUtterance(
                utt_id if isinstance(utt_id, str) else f"{name}_{utt_id}",
                str(order.index(position)), emotion if labels == "meld7" else sentiment,
                text=text.strip()))
        speaker_names[name] = [f"one-hot {p}" for p in order]
        split = "test" if d in test else "valid" if name in valid else "train"
        features = {m: [np.ascontiguousarray(row) for row in arrays[m]] for m in FEATURES}
        dialogues.append(RawDialogue(name, split, utterances, features=features))

    corpus = RawCorpus("meld", "classification", list(meld.LABEL_SETS[labels]), dialogues,
                       protocol, info={"warnings": []})
    return finish(corpus, FORMAT, COUNTS, meld.REFERENCE, [path], {
        "labels": labels, "protocol": protocol,
        "validation": "carved from trainVid (train + dev of the release), ~10% by name",
        "speaker_names": speaker_names, "nonfinite_zeroed": fixed,
        "feature_dims": {m: dim for m, (_, dim) in FEATURES.items()}})
