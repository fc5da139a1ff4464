"""IEMOCAP's raw release folder (IEMOCAP_full_release): labels, transcripts, media paths.

Layout read, for each ``Session{1..5}`` under the root:
- ``dialog/EmoEvaluation/<dialogue>.txt``: one line per utterance
  ``[start - end]<TAB>utt_id<TAB>label<TAB>[V, A, D]`` (other lines are annotator detail);
  label codes neu, hap, sad, ang, exc, fru, fea, sur, dis, oth, xxx.
- ``dialog/transcriptions/<dialogue>.txt``: lines ``utt_id [start-end]: text``.
- ``sentences/wav/<dialogue>/<utt_id>.wav``: one wav per utterance (audio).
- ``dialog/avi/DivX/<dialogue>.avi``: one video per dialogue, cut per utterance by its
  EmoEvaluation interval (vision).
Speaker = the gender letter of the utterance id's last segment (``Ses01F_impro01_M002`` ->
``M``); utterances are ordered by start time. Utterances whose code is outside the label set
(fea, sur, dis, oth, xxx; and fru under iemocap4) are dropped, as is standard, and counted
in ``info["dropped"]``. docs/datasets/iemocap.md describes it for users.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Sequence

from merbench.data import _iemocap as iemocap
from merbench.data._common import (
    MISSING_MEDIA, check_modalities, choose, decode_file, finish, media,
)
from merbench.data.types import RawCorpus, RawDialogue, RawUtterance
from merbench.errors import MerbenchError

FORMAT = "iemocap_raw"
DESCRIPTION = "the raw release folder (Session1..5: EmoEvaluation, transcriptions, wav, avi)"
LOOKS_FOR = "Session{1..5}/dialog/EmoEvaluation/"

_EVAL_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[([^\]]*)\]\s*$")
_TRANSCRIPT_LINE = re.compile(r"^(\S+)\s+\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]:\s?(.*)$")


def detect(root: Path) -> bool:
    return root.is_dir() and any((root / f"Session{s}" / "dialog" / "EmoEvaluation").is_dir()
                                 for s in iemocap.SESSIONS)


def _read_lines(path: Path) -> list[str]:
    return decode_file(path.read_bytes())[0].splitlines()


def _evaluations(path: Path, dialogue: str) -> list[tuple[float, float, str, str]]:
    """(start, end, utterance id, code) per utterance line of an EmoEvaluation file."""
    rows, seen = [], set()
    for number, line in enumerate(_read_lines(path), 1):
        line = line.strip()
        # The header (%), blank lines and the annotator lines (C-E1:, A-F1: ...) name no
        # utterance; a line that names one of the dialogue's utterances is an utterance line
        # and must parse, or that utterance would vanish from the corpus without a word.
        if not line.startswith("[") and f"{dialogue}_" not in line:
            continue
        m = _EVAL_LINE.match(line)
        if not m:
            raise MerbenchError(
                f"{FORMAT}: {path} line {number}: {line[:60]!r}; expected "
                f"'[start - end]<TAB>utt_id<TAB>label<TAB>[V, A, D]'"
            )
        start, end, utt, code = float(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
        if not utt.startswith(dialogue + "_"):
            raise MerbenchError(f"{FORMAT}: {path} line {number}: utterance {utt!r} does not "
                                f"belong to dialogue {dialogue!r}")
        if code not in iemocap.CODES:
            raise MerbenchError(
                f"{FORMAT}: {path} line {number}: utterance {utt!r} has label {code!r}; "
                f"expected one of {', '.join(iemocap.CODES)}"
            )
        if utt in seen:
            raise MerbenchError(f"{FORMAT}: {path} line {number}: utterance {utt!r} is listed twice")
        seen.add(utt)
        rows.append((start, end, utt, code))
    return rows


def _transcripts(path: Path) -> dict[str, str]:
    texts = {}
    for line in _read_lines(path):
        m = _TRANSCRIPT_LINE.match(line.strip())
        if m:
            texts[m.group(1)] = m.group(4).strip()
    return texts


def _speaker(utt: str, path: Path) -> str:
    letter = utt.rsplit("_", 1)[-1][:1]
    if letter not in ("M", "F"):
        raise MerbenchError(f"{FORMAT}: {path}: utterance {utt!r} has no speaker letter; expected "
                            f"its last segment to start with M or F (e.g. _M002)")
    return letter


def read_iemocap_raw(root: Path, *, labels: str | None = None, protocol: str | None = None,
                     fold: int | None = None, modalities: Sequence[str] = (),
                     missing_media: str = "error") -> RawCorpus:
    """Read the raw release folder at ``root`` (the folder holding Session1..Session5)."""
    labels, protocol, fold = iemocap.resolve(FORMAT, labels, protocol, fold)
    modalities = check_modalities(FORMAT, modalities)
    choose(FORMAT, "missing_media", missing_media, MISSING_MEDIA)
    root = Path(root)
    sessions = [s for s in iemocap.SESSIONS if (root / f"Session{s}" / "dialog" / "EmoEvaluation").is_dir()]
    if not sessions:
        raise MerbenchError(f"{FORMAT}: no Session1..Session5/dialog/EmoEvaluation folder in {root}")
    test_session = 5 if protocol == "session5-test" else fold
    if test_session not in sessions:
        raise MerbenchError(f"{FORMAT}: {root / f'Session{test_session}'} is missing; protocol "
                            f"{protocol!r} tests on Session {test_session}")

    sources: list[Path] = []
    dropped: Counter[str] = Counter()
    missing: dict[str, int] = {}
    per_dialogue: dict[str, tuple[str, list[RawUtterance]]] = {}
    for s in sessions:
        session_dir = root / f"Session{s}"
        eval_files = sorted(p for p in (session_dir / "dialog" / "EmoEvaluation").glob("*.txt")
                            if not p.name.startswith("._"))  # macOS resource forks
        for eval_path in eval_files:
            dialogue = eval_path.stem
            if iemocap.session_of(dialogue, FORMAT, eval_path) != s:
                raise MerbenchError(f"{FORMAT}: {eval_path}: dialogue {dialogue!r} is not a "
                                    f"Session {s} dialogue (expected prefix Ses0{s})")
            transcript_path = session_dir / "dialog" / "transcriptions" / f"{dialogue}.txt"
            if not transcript_path.is_file():
                raise MerbenchError(f"{FORMAT}: missing file {transcript_path} (expected the "
                                    f"transcript of {eval_path.name})")
            rows = _evaluations(eval_path, dialogue)
            texts = _transcripts(transcript_path)
            sources += [eval_path, transcript_path]
            video = session_dir / "dialog" / "avi" / "DivX" / f"{dialogue}.avi"
            utterances = []
            for start, end, utt, code in sorted(rows, key=lambda r: (r[0], r[2])):
                name = iemocap.CODES[code]
                label = iemocap.map_class(name, labels)
                if label is None:
                    dropped[name] += 1
                    continue
                text = texts.get(utt)
                if not text:
                    raise MerbenchError(f"{FORMAT}: {transcript_path}: utterance {utt!r} has no "
                                        f"transcript; expected a line '{utt} [start-end]: text'")
                record = f"utterance {utt!r}"
                wav = media(session_dir / "sentences" / "wav" / dialogue / f"{utt}.wav", "audio",
                            modalities, FORMAT, record, missing_media, missing)
                avi = media(video, "vision", modalities, FORMAT, record, missing_media, missing)
                if wav is False or avi is False:
                    continue
                has_video = isinstance(avi, str)
                utterances.append(RawUtterance(
                    utt, _speaker(utt, eval_path), label, text=text, audio_path=wav or None,
                    video_path=avi or None, video_interval=(start, end) if has_video else None,
                ))
            if utterances:
                per_dialogue[dialogue] = (f"Ses0{s}", utterances)

    splits = iemocap.assign_splits(sorted(per_dialogue), protocol, fold, FORMAT, root)
    dialogues = [RawDialogue(d, splits[d], utts, session=session)
                 for d, (session, utts) in per_dialogue.items()]
    corpus = RawCorpus("iemocap", "classification", list(iemocap.LABEL_SETS[labels]), dialogues,
                       protocol, info={"warnings": []})
    if len(sessions) < len(iemocap.SESSIONS):
        corpus.info["warnings"].append(f"{FORMAT}: only Sessions {sessions} found in {root}")
    return finish(corpus, FORMAT, iemocap.expected_counts(labels, protocol, fold), iemocap.REFERENCE,
                  sources, {**iemocap.split_info(labels, protocol, fold, "carved"),
                            "dropped": dict(dropped), "missing_media_dropped": missing,
                            "sessions": sessions})
