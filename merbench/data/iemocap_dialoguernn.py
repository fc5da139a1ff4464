"""IEMOCAP in the DialogueRNN features pickle (``IEMOCAP_features.pkl``): ships features.

Layout (declare-lab/conv-emotion, DialogueRNN/dataloader.py, ``IEMOCAPDataset``): a 9-tuple
(videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoVisual, videoSentence,
trainVid, testVid), each a dict keyed by dialogue id except the two id lists. Per utterance:
text 100-d, audio 100-d, visual 512-d vectors; speakers 'M' / 'F'; labels 0..5 in the
order of ``_iemocap.IEMOCAP6``. The file has no validation list: it is carved from the
training sessions (``_iemocap.assign_splits``). docs/datasets/iemocap.md describes it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from merbench.data import _iemocap as iemocap
from merbench.data._common import (
    NONFINITE, check_modalities, check_per_utterance, choose, feature_array, finish, load_tuple_pickle,
    pickle_path,
)
from merbench.data.types import RawCorpus, RawDialogue, RawUtterance
from merbench.errors import MerbenchError

FORMAT = "iemocap_dialoguernn"
FILE_NAMES = ("IEMOCAP_features.pkl", "IEMOCAP_features_raw.pkl")
DESCRIPTION = "DialogueRNN features pickle IEMOCAP_features.pkl (text 100-d, audio 100-d, vision 512-d)"
LOOKS_FOR = "IEMOCAP_features.pkl"
# Tuple position and feature size of each shipped modality.
FEATURES = {"text": (3, 100), "audio": (4, 100), "vision": (5, 512)}
TUPLE = ("videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio", "videoVisual",
         "videoSentence", "trainVid", "testVid")


def detect(root: Path) -> bool:
    if root.is_file():
        return root.name.lower() in {n.lower() for n in FILE_NAMES}
    return any((root / n).is_file() for n in FILE_NAMES)


def read_iemocap_dialoguernn(root: Path, *, labels: str | None = None,
                             protocol: str | None = None, fold: int | None = None,
                             modalities: Sequence[str] = (),
                             nonfinite: str = "error") -> RawCorpus:
    """Read the DialogueRNN pickle at ``root`` (the file, or a folder holding it)."""
    labels, protocol, fold = iemocap.resolve(FORMAT, labels, protocol, fold)
    check_modalities(FORMAT, modalities)  # every modality is shipped
    choose(FORMAT, "nonfinite", nonfinite, NONFINITE)
    path = pickle_path(Path(root), FILE_NAMES, FORMAT)
    data = load_tuple_pickle(path, FORMAT, TUPLE)
    for name, item in zip(TUPLE[:7], data[:7]):
        if not isinstance(item, dict):
            raise MerbenchError(f"{FORMAT}: {path}: {name} is a {type(item).__name__}; "
                                f"expected a dict keyed by dialogue id")
    utt_ids, speakers, label_ids, sentences = data[0], data[1], data[2], data[6]
    train_ids, test_ids = list(data[7]), list(data[8])
    if set(train_ids) & set(test_ids) or set(train_ids) | set(test_ids) != set(label_ids):
        bad = sorted((set(train_ids) & set(test_ids)) | (set(label_ids) ^ (set(train_ids) | set(test_ids))))
        raise MerbenchError(f"{FORMAT}: {path}: dialogue {bad[0]!r} is not in exactly one of "
                            f"trainVid / testVid; expected every labelled dialogue in one")
    ids = sorted(label_ids)
    splits = iemocap.assign_splits(ids, protocol, fold, FORMAT, path)
    warnings = []
    if set(test_ids) != {d for d in ids if iemocap.session_of(d, FORMAT, path) == 5}:
        warnings.append(f"{FORMAT}: {path}: testVid is not Session 5; splits follow the "
                        f"session of each dialogue id")

    dropped: Counter[str] = Counter()
    fixed: dict[str, int] = {}
    dialogues = []
    for d in ids:
        n = len(label_ids[d])
        tables = {"videoIDs": utt_ids, "videoSpeakers": speakers, "videoSentence": sentences}
        tables.update({TUPLE[pos]: data[pos] for pos, _ in FEATURES.values()})
        check_per_utterance(FORMAT, path, tables, d, n)
        arrays = {m: feature_array(data[pos][d], FORMAT, path, f"dialogue {d!r}", m, (dim,), 2,
                                   nonfinite, fixed)
                  for m, (pos, dim) in FEATURES.items()}  # (L, D)
        utterances, keep = [], []
        for i in range(n):
            record = f"dialogue {d!r} utterance {i}"
            name = iemocap.pickle_class(label_ids[d][i], FORMAT, path, record)
            speaker = iemocap.check_speaker(speakers[d][i], FORMAT, path, record)
            text = sentences[d][i]
            if not isinstance(text, str) or not text.strip():
                raise MerbenchError(f"{FORMAT}: {path}: {record} has no transcript in videoSentence")
            label = iemocap.map_class(name, labels)
            if label is None:
                dropped[name] += 1
                continue
            keep.append(i)
            utterances.append(RawUtterance(str(utt_ids[d][i]), speaker, label, text=text.strip()))
        if utterances:
            features = {m: [np.ascontiguousarray(arrays[m][i]) for i in keep] for m in FEATURES}
            session = f"Ses0{iemocap.session_of(d, FORMAT, path)}"
            dialogues.append(RawDialogue(d, splits[d], utterances, session=session,
                                         features=features))

    corpus = RawCorpus("iemocap", "classification", list(iemocap.LABEL_SETS[labels]), dialogues,
                       protocol, info={"warnings": warnings})
    return finish(corpus, FORMAT, iemocap.expected_counts(labels, protocol, fold), iemocap.REFERENCE,
                  [path], {**iemocap.split_info(labels, protocol, fold, "carved"),
                           "dropped": dict(dropped), "nonfinite_zeroed": fixed,
                           "feature_dims": {m: dim for m, (_, dim) in FEATURES.items()}})
