"""IEMOCAP in the COSMIC / conv-emotion transcripts pickle (``iemocap.pkl``).

Layout (``pickle.load(f, encoding="latin1")``): a list of six items: speakers
{dialogue: ['M' | 'F', ...]}, labels {dialogue: [0..5, ...]}, transcripts {dialogue:
[str, ...]}, then the train, test and validation lists of dialogue ids. Utterances are in
dialogue order; the pickle has no utterance ids, so they are ``<dialogue>#<index>``. It
holds no media and no features: the text modality is extracted from the transcripts.
docs/datasets/iemocap.md describes it for users.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from merbench.data import _iemocap as iemocap
from merbench.data._common import check_modalities, finish, load_pickle, pickle_path
from merbench.data.types import RawCorpus, RawDialogue, RawUtterance
from merbench.errors import MerbenchError

FORMAT = "iemocap_cosmic"
FILE_NAMES = ("iemocap.pkl",)
DESCRIPTION = "COSMIC / conv-emotion transcripts pickle iemocap.pkl (text only)"
LOOKS_FOR = "iemocap.pkl"


def detect(root: Path) -> bool:
    return (root.is_file() and root.name.lower() in FILE_NAMES) or (root / FILE_NAMES[0]).is_file()


def _unpack(data: object, path: Path) -> tuple[dict, dict, dict, list, list, list]:
    if not isinstance(data, (list, tuple)) or len(data) != 6:
        raise MerbenchError(
            f"{FORMAT}: {path} holds {type(data).__name__} of length "
            f"{len(data) if hasattr(data, '__len__') else '?'}; expected a list of 6 items "
            f"(speakers, labels, transcripts, train ids, test ids, valid ids)"
        )
    names = ("speakers", "labels", "transcripts", "train ids", "test ids", "valid ids")
    for i, (item, name) in enumerate(zip(data, names)):
        want = dict if i < 3 else (list, tuple, set)
        if not isinstance(item, want):
            raise MerbenchError(
                f"{FORMAT}: {path} item {i} ({name}) is a {type(item).__name__}; expected "
                f"{'a dict keyed by dialogue id' if i < 3 else 'a list of dialogue ids'}"
            )
    return tuple(data)  # type: ignore[return-value]


def read_iemocap_cosmic(root: Path, *, labels: str | None = None, protocol: str | None = None,
                        fold: int | None = None, modalities: Sequence[str] = ()) -> RawCorpus:
    """Read the COSMIC pickle at ``root`` (the file, or a folder holding iemocap.pkl)."""
    labels, protocol, fold = iemocap.resolve(FORMAT, labels, protocol, fold)
    media = [m for m in check_modalities(FORMAT, modalities) if m != "text"]
    if media:
        raise MerbenchError(
            f"{FORMAT}: the pickle holds transcripts only; {', '.join(media)} was asked "
            f"(read the raw release with format iemocap_raw for audio and video)"
        )
    path = pickle_path(Path(root), FILE_NAMES, FORMAT)
    speakers, label_ids, transcripts, train_ids, test_ids, valid_ids = _unpack(
        load_pickle(path, FORMAT), path)

    listed = [*train_ids, *test_ids, *valid_ids]
    if len(set(listed)) != len(listed) or set(listed) != set(label_ids):
        extra = sorted(set(label_ids) ^ set(listed)) or [d for d, n in Counter(listed).items() if n > 1]
        raise MerbenchError(
            f"{FORMAT}: {path}: dialogue {extra[0]!r} is not listed exactly once in the "
            f"train/test/valid lists; expected each labelled dialogue in one list"
        )
    ids = sorted(label_ids)
    splits = iemocap.assign_splits(ids, protocol, fold, FORMAT, path, valid_ids=list(valid_ids))
    warnings = []
    file_test = {d for d in test_ids}
    if file_test != {d for d in ids if iemocap.session_of(d, FORMAT, path) == 5}:
        warnings.append(f"{FORMAT}: {path}: the file's test list is not Session 5; "
                        f"splits follow the session of each dialogue id")

    dropped: Counter[str] = Counter()
    dialogues = []
    for d in ids:
        for key, table in (("speakers", speakers), ("transcripts", transcripts)):
            if d not in table:
                raise MerbenchError(f"{FORMAT}: {path}: dialogue {d!r} has labels but no {key}")
            if len(table[d]) != len(label_ids[d]):
                raise MerbenchError(
                    f"{FORMAT}: {path}: dialogue {d!r} has {len(label_ids[d])} labels and "
                    f"{len(table[d])} {key}; expected one per utterance"
                )
        utterances = []
        for i, (value, speaker, text) in enumerate(zip(label_ids[d], speakers[d], transcripts[d])):
            record = f"dialogue {d!r} utterance {i}"
            name = iemocap.pickle_class(value, FORMAT, path, record)
            speaker = iemocap.check_speaker(speaker, FORMAT, path, record)
            if not isinstance(text, str) or not text.strip():
                raise MerbenchError(f"{FORMAT}: {path}: {record} has no transcript; expected text")
            label = iemocap.map_class(name, labels)
            if label is None:
                dropped[name] += 1
                continue
            utterances.append(RawUtterance(f"{d}#{i:03d}", speaker, label, text=text.strip()))
        if utterances:
            session = f"Ses0{iemocap.session_of(d, FORMAT, path)}"
            dialogues.append(RawDialogue(d, splits[d], utterances, session=session))

    corpus = RawCorpus("iemocap", "classification", list(iemocap.LABEL_SETS[labels]), dialogues,
                       protocol, info={"warnings": warnings})
    valid_source = "the file's validation list" if protocol == "session5-test" else "carved"
    return finish(corpus, FORMAT, iemocap.expected_counts(labels, protocol, fold), iemocap.REFERENCE,
                  [path], {**iemocap.split_info(labels, protocol, fold, valid_source),
                           "dropped": dict(dropped)})
