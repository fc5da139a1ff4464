"""MELD's raw release (MELD.Raw): the three CSVs and the per-utterance mp4 clips.

Layout read under the root:
- ``train_sent_emo.csv``, ``dev_sent_emo.csv``, ``test_sent_emo.csv`` with columns Sr No.,
  Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season, Episode,
  StartTime, EndTime (the six used are required).
- clips ``dia{D}_utt{U}.mp4`` under ``train_splits/``, ``dev_splits_complete/`` and
  ``output_repeated_splits_test/`` (directly under the root, or under ``train/``, ``dev/``,
  ``test/``); the clip is both the audio and the vision source (whole file, no interval).
The official split; dev is the validation split. Dialogue ids are ``<csv split>_dia{D}``
(the release numbers dialogues per split), utterances are ordered by Utterance_ID, and the
speaker is the per-dialogue index of the name in order of first appearance (names in
``info["speaker_names"]``).

Encoding: each CSV is read as UTF-8, falling back to cp1252 for the whole file when it is
not valid UTF-8; then every field goes through ``_common.fix_mojibake`` (UTF-8 text that was
read as cp1252/latin-1 is decoded again, and stray cp1252 control bytes such as "\\x92"
become their characters), so no byte sequence makes the reader fail. The number of fields
changed is in ``info["text_fixed"]``. docs/datasets/meld.md describes it for users.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

from merbench.data import _meld as meld
from merbench.data._common import (
    MISSING_MEDIA, check_modalities, checked_rows, choose, decode_file, finish, fix_mojibake,
    media, require_file,
)
from merbench.data.types import RawCorpus, RawDialogue, RawUtterance
from merbench.errors import MerbenchError

FORMAT = "meld_raw"
DESCRIPTION = "the raw release (train/dev/test_sent_emo.csv and the mp4 clip folders)"
LOOKS_FOR = "train_sent_emo.csv"
# CSV split name -> (merbench split, clip folder).
SPLITS = {"train": ("train", "train_splits"), "dev": ("valid", "dev_splits_complete"),
          "test": ("test", "output_repeated_splits_test")}
COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")


def detect(root: Path) -> bool:
    return root.is_dir() and (root / "train_sent_emo.csv").is_file()


def _clip_folder(root: Path, csv_split: str, folder: str) -> Path:
    for candidate in (root / folder, root / csv_split / folder):
        if candidate.is_dir():
            return candidate
    return root / folder


def _rows(path: Path) -> tuple[list[dict[str, str]], str, int]:
    """Rows with every field cleaned; the file's encoding; how many fields were fixed."""
    text, encoding = decode_file(path.read_bytes())
    reader = csv.DictReader(io.StringIO(text, newline=""))
    raws = list(checked_rows(reader, path, FORMAT, f"a CSV file with columns {', '.join(COLUMNS)}"))
    header = [h.strip() for h in (reader.fieldnames or [])]
    absent = [c for c in COLUMNS if c not in header]
    if absent:
        raise MerbenchError(f"{FORMAT}: {path} has no column {absent[0]!r}; expected columns "
                            f"{', '.join(COLUMNS)}")
    rows, fixed = [], 0
    for raw in raws:
        row = {}
        for key, value in raw.items():
            if key is None:  # more fields than the header: keep the header's columns
                continue
            clean = fix_mojibake(value or "")
            fixed += clean != (value or "")
            row[key.strip()] = clean.strip()
        rows.append(row)
    return rows, encoding, fixed


def _int(row: dict[str, str], key: str, path: Path, number: int) -> int:
    try:
        return int(row[key])
    except (TypeError, ValueError):
        raise MerbenchError(f"{FORMAT}: {path} row {number}: {key} is {row.get(key)!r}; "
                            f"expected an integer") from None


def read_meld_raw(root: Path, *, labels: str | None = None, protocol: str | None = None,
                  fold: int | None = None, modalities: Sequence[str] = (),
                  missing_media: str = "error") -> RawCorpus:
    """Read the MELD.Raw folder at ``root`` (the folder holding the three CSVs)."""
    labels, protocol = meld.resolve(FORMAT, labels, protocol, fold)
    modalities = check_modalities(FORMAT, modalities)
    choose(FORMAT, "missing_media", missing_media, MISSING_MEDIA)
    root = Path(root)
    label_names = meld.LABEL_SETS[labels]
    sources, encodings, text_fixed, speaker_names = [], {}, 0, {}
    missing: dict[str, int] = {}
    dialogues = []
    for csv_split, (split, folder) in SPLITS.items():
        path = require_file(root / f"{csv_split}_sent_emo.csv", FORMAT,
                            f"the MELD {csv_split} CSV")
        rows, encodings[path.name], fixed = _rows(path)
        sources.append(path)
        text_fixed += fixed
        clips = _clip_folder(root, csv_split, folder)
        by_dialogue: dict[int, dict[int, RawUtterance]] = {}
        for number, row in enumerate(rows, 2):  # row 1 is the header
            d, u = _int(row, "Dialogue_ID", path, number), _int(row, "Utterance_ID", path, number)
            record = f"{path} row {number} (dia{d}_utt{u})"
            emotion, sentiment = row["Emotion"].lower(), row["Sentiment"].lower()
            if emotion not in meld.MELD7:
                raise MerbenchError(f"{FORMAT}: {record}: Emotion {row['Emotion']!r}; expected "
                                    f"one of {', '.join(meld.MELD7)}")
            if sentiment not in meld.MELD3:
                raise MerbenchError(f"{FORMAT}: {record}: Sentiment {row['Sentiment']!r}; "
                                    f"expected one of {', '.join(meld.MELD3)}")
            if not row["Utterance"]:
                raise MerbenchError(f"{FORMAT}: {record}: the Utterance is empty; expected a transcript")
            if u in by_dialogue.get(d, {}):
                raise MerbenchError(f"{FORMAT}: {record}: dia{d}_utt{u} appears twice")
            clip = clips / f"dia{d}_utt{u}.mp4"
            audio = media(clip, "audio", modalities, FORMAT, record, missing_media, missing)
            video = media(clip, "vision", modalities, FORMAT, record, missing_media, missing)
            if audio is False or video is False:
                continue
            label = label_names.index(emotion if labels == "meld7" else sentiment)
            by_dialogue.setdefault(d, {})[u] = RawUtterance(
                f"{csv_split}_dia{d}_utt{u}", row["Speaker"], label, text=row["Utterance"],
                audio_path=audio or None, video_path=video or None)
        for d in sorted(by_dialogue):
            utterances = [by_dialogue[d][u] for u in sorted(by_dialogue[d])]
            order: list[str] = []
            for utt in utterances:
                if utt.speaker not in order:
                    order.append(utt.speaker)
                utt.speaker = str(order.index(utt.speaker))
            dialogue_id = f"{csv_split}_dia{d}"
            speaker_names[dialogue_id] = order
            dialogues.append(RawDialogue(dialogue_id, split, utterances))

    corpus = RawCorpus("meld", "classification", list(label_names), dialogues, protocol,
                       info={"warnings": []})
    return finish(corpus, FORMAT, meld.COUNTS, meld.REFERENCE, sources, {
        "labels": labels, "protocol": protocol, "validation": "the release's dev split",
        "encodings": encodings, "text_fixed": text_fixed, "speaker_names": speaker_names,
        "missing_media_dropped": missing})
