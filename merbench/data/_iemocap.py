"""IEMOCAP rules shared by its three formats: label sets, protocols, release counts.

Protocols (the protocol is part of the name):
- ``session5-test``: test = Session 5; train = Sessions 1-4 less a validation carve-out
  of whole dialogues (the file's own validation list where it has one, the COSMIC pickle's
  12 dialogues; else ~10% per session, seeded by name: ``_common.carve_validation``).
- ``loso``: leave one session out; ``fold`` 1..5 is the test session; validation carved
  from the four training sessions the same way. Speakers never cross train and test in
  either protocol (each session has its own two actors).
"""

from __future__ import annotations

import re
from pathlib import Path

from merbench.data._common import carve_validation, check_fold, choose
from merbench.errors import MerbenchError

# Ids 0..5 of the COSMIC and DialogueRNN pickles, in this order.
IEMOCAP6 = ["happy", "sad", "neutral", "angry", "excited", "frustrated"]
IEMOCAP4 = ["happy", "sad", "neutral", "angry"]
LABEL_SETS = {"iemocap6": IEMOCAP6, "iemocap4": IEMOCAP4}
# Class name (as in the pickles) -> class in each label set; absent = dropped.
CLASS_MAP = {
    "iemocap6": {c: c for c in IEMOCAP6},
    # The standard four-way set merges excited into happy and drops frustrated.
    "iemocap4": {"happy": "happy", "excited": "happy", "sad": "sad", "neutral": "neutral",
                 "angry": "angry"},
}
# EmoEvaluation codes of the raw release: the six above and the five left out by both sets.
CODES = {"neu": "neutral", "hap": "happy", "sad": "sad", "ang": "angry", "exc": "excited",
         "fru": "frustrated", "fea": "fear", "sur": "surprise", "dis": "disgust",
         "oth": "other", "xxx": "no agreement"}
PROTOCOLS = ("session5-test", "loso")
SESSIONS = (1, 2, 3, 4, 5)

# Utterances per session in the six-way release (the COSMIC / DialogueRNN pickles: 7,433
# in all; 5,810 in Sessions 1-4, 1,623 in Session 5) and its four-way subset.
SESSION_COUNTS = {
    "iemocap6": {1: 1373, 2: 1356, 3: 1569, 4: 1512, 5: 1623},
    "iemocap4": {1: 1093, 2: 1031, 3: 1187, 4: 1031, 5: 1242},
}
REFERENCE = "the six-way IEMOCAP release (COSMIC/DialogueRNN pickles)"
_SESSION = re.compile(r"^Ses0([1-5])")


def resolve(fmt: str, labels: str | None, protocol: str | None,
            fold: int | None) -> tuple[str, str, int | None]:
    labels = choose(fmt, "labels", labels or "iemocap6", list(LABEL_SETS))
    protocol = choose(fmt, "protocol", protocol or "session5-test", PROTOCOLS)
    fold = check_fold(fmt, protocol, fold, SESSIONS if protocol == "loso" else ())
    return labels, protocol, fold


def session_of(dialogue_id: str, fmt: str, path: Path | str) -> int:
    m = _SESSION.match(dialogue_id)
    if not m:
        raise MerbenchError(
            f"{fmt}: {path}: dialogue {dialogue_id!r} does not start with Ses01..Ses05"
        )
    return int(m.group(1))


def assign_splits(dialogue_ids: list[str], protocol: str, fold: int | None, fmt: str,
                  path: Path | str, valid_ids: list[str] | None = None) -> dict[str, str]:
    """Dialogue id -> "train" | "valid" | "test" under ``protocol``.

    ``valid_ids``: the file's validation list, used by ``session5-test`` only (it is drawn
    from Sessions 1-4, so under ``loso`` it would overlap the test session).
    """
    sessions = {d: session_of(d, fmt, path) for d in dialogue_ids}
    test_session = 5 if protocol == "session5-test" else fold
    training = [d for d in dialogue_ids if sessions[d] != test_session]
    if protocol == "session5-test" and valid_ids is not None:
        unknown = sorted(set(valid_ids) - set(training))
        if unknown:
            raise MerbenchError(
                f"{fmt}: {path}: validation dialogue {unknown[0]!r} is not a Sessions 1-4 "
                f"dialogue of the file"
            )
        valid = set(valid_ids)
    else:
        valid = carve_validation(training, {d: str(sessions[d]) for d in training})
    return {d: "test" if sessions[d] == test_session else "valid" if d in valid else "train"
            for d in dialogue_ids}


def expected_counts(labels: str, protocol: str, fold: int | None) -> dict[str, int]:
    per_session = SESSION_COUNTS[labels]
    total = sum(per_session.values())
    test = per_session[5 if protocol == "session5-test" else fold]
    return {"total": total, "train+valid": total - test, "test": test}


def split_info(labels: str, protocol: str, fold: int | None, valid_source: str) -> dict:
    return {"labels": labels, "protocol": protocol, "fold": fold,
            "test_session": 5 if protocol == "session5-test" else fold,
            "validation": valid_source}


def map_class(name: str, labels: str) -> int | None:
    """Class id of ``name`` in the label set ``labels``; None when the set drops it."""
    target = CLASS_MAP[labels].get(name)
    return None if target is None else LABEL_SETS[labels].index(target)


def pickle_class(value: object, fmt: str, path: Path | str, record: str) -> str:
    """The class name of a pickle's label id 0..5, or an error naming the record."""
    try:
        ok = int(value) == value and 0 <= int(value) < len(IEMOCAP6)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise MerbenchError(
            f"{fmt}: {path}: {record} has label {value!r}; expected an id 0..5 "
            f"({', '.join(IEMOCAP6)})"
        )
    return IEMOCAP6[int(value)]  # type: ignore[call-overload]


def check_speaker(value: object, fmt: str, path: Path | str, record: str) -> str:
    if value not in ("M", "F"):
        raise MerbenchError(f"{fmt}: {path}: {record} has speaker {value!r}; expected 'M' or 'F'")
    return str(value)
