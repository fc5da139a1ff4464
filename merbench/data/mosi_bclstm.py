"""CMU-MOSI in the bc-LSTM release (Poria et al., ACL 2017; declare-lab's bc-LSTM/data folder):
ships one vector per utterance and modality, binary sentiment labels and transcripts.

Layout (every CSV headerless, the ``.arff`` copies ignored):
- ``transcripts.csv``: utterance id ``<video id>_<n>`` (n = place in the video, from 1),
  transcript, video number, label (1 positive, 0 negative).
- ``text_train.csv`` / ``text_test.csv``: column 0 is a row number (from 0) into
  transcripts.csv; the rest (the text features again) is not read.
- ``text/text_<split>0.csv`` (100 features), ``audio/audio_<split>0.csv`` (73),
  ``video/video_<split>0.csv`` (100): features, then the label.

Join as the release's own create_data.py does: row i of ``<m>_<split>0.csv`` is the utterance
named by row i of ``text_<split>.csv``. The label in each modality file's last column must
agree with transcripts.csv. One RawDialogue per video (one speaker: the video id), its
utterances ordered by the ``<n>`` of their ids; nothing depends on the row order of any file.

Two protocols over the release's train / test videos (62 / 31, speaker independent; not the
SDK's standard folds):
- ``bclstm``: validation = the 12 training videos of ``VALID_VIDEOS``, test = the 31 test videos.
  The release's text and video features come from extractors trained on the training videos,
  so they separate those videos' labels almost perfectly (logistic regression: 98.8 valid
  against 74.2 test accuracy on text): a validation carved from training videos is leaked and
  selects nothing (docs/datasets/mosi.md).
- ``unseen-valid``: train = all 62 training videos, validation = the 10 test videos of
  ``UNSEEN_VALID_VIDEOS``, test = the other 21. Validation and test are both videos the
  extractors never saw, so selection on validation means what it says; the test split is the
  release's test set less those 10 videos (457 of its 752 utterances), never read to select.
Task
classification, label set ``binary``. Feature files of every modality present are read; those
of the modalities asked (all three when none is) must exist, except text, which the
transcripts can serve. NaN / inf features are an error unless ``nonfinite="zero"``.
docs/datasets/mosi.md describes it for users.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from merbench.data._common import (
    NONFINITE, check_fold, check_modalities, checked_rows, choose, decode_file, finish, require_file,
)
from merbench.data.types import MODALITIES, RawCorpus, RawDialogue, RawUtterance
from merbench.errors import MerbenchError, excerpt

FORMAT = "mosi_bclstm"
DESCRIPTION = ("bc-LSTM release: transcripts.csv, text_{train,test}.csv, {text,audio,video}/"
               "<m>_{train,test}0.csv (text 100-d, audio 73-d, vision 100-d vectors)")
LOOKS_FOR = "transcripts.csv and text_train.csv: the bc-LSTM repository's data/ folder"
TRANSCRIPTS = "transcripts.csv"
RELEASE_SPLITS = ("train", "test")
# modality -> (folder and file stem, features per utterance)
FILES = {"text": ("text", 100), "audio": ("audio", 73), "vision": ("video", 100)}
LABEL_SETS = {"binary": ["negative", "positive"]}
PROTOCOLS = ("bclstm", "unseen-valid")
# The validation videos of protocol bclstm, fixed once: the 12 of the release's 62 training
# videos with the lowest sha256 of "merbench-valid:<video id>" (the key carve_validation uses
# for IEMOCAP and MELD). Written out so that the split never depends on what a copy holds.
VALID_VIDEOS = (
    "1DmNV9C1hbY", "5W7Z1C_fDaE", "7JsX8y1ysxY", "9qR7uwkblbs", "Bfr499ggo-0", "BioHAh1qJAQ",
    "G6GlGvlkxAQ", "VbQk4H8hgr0", "c5xsKMxpXnc", "f9O3YtZ2VfI", "lXPQBPVc5Cw", "pLTX3ipuDJI",
)
# The validation videos of protocol unseen-valid, fixed once by the same rule among the
# release's 31 test videos (10 of them: 295 utterances, 184 positive).
UNSEEN_VALID_VIDEOS = (
    "2WGyTLYerpo", "8d-gEyoeBzc", "BI97DNYfe5I", "BXuRRbG0Ugk", "Dg_0XKD0Mf4", "I5y0__X72p0",
    "Iu2PFX3z_1s", "Njd1F0vZSm4", "Nzq88NnDkEk", "Sqr0AcuoNnk",
)
# protocol -> (videos moved to valid, the release split they must come from)
VALIDATION = {"bclstm": (VALID_VIDEOS, "train"), "unseen-valid": (UNSEEN_VALID_VIDEOS, "test")}
SPLIT_WORDS = {"train": "training", "test": "test"}
# The release: train 1,447 utterances / 62 videos, test 752 / 31; each protocol moves some
# videos to validation.
COUNTS = {"bclstm": {"train": 1110, "valid": 337, "test": 752},
          "unseen-valid": {"train": 1447, "valid": 295, "test": 457}}
VIDEO_COUNTS = {"bclstm": {"train": 50, "valid": 12, "test": 31},
                "unseen-valid": {"train": 62, "valid": 10, "test": 21}}
UTTERANCE_ID = re.compile(r"^(.+)_(\d+)$")


def detect(root: Path) -> bool:
    return root.is_dir() and (root / TRANSCRIPTS).is_file() and (root / "text_train.csv").is_file()


def _rows(path: Path) -> list[list[str]]:
    text, _ = decode_file(path.read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""))
    return [row for row in checked_rows(reader, path, FORMAT, "the bc-LSTM release's quoted CSV rows") if row]


def _label(cell: str, path: Path, line: int) -> int:
    try:
        value = float(cell)
    except ValueError:
        value = -1.0
    if value not in (0.0, 1.0):
        raise MerbenchError(f"{FORMAT}: {path} line {line}: label {excerpt(cell)}; expected 0 (negative) "
                            f"or 1 (positive)")
    return int(value)


class _Utterance:
    """One row of transcripts.csv."""

    def __init__(self, row: list[str], path: Path, line: int) -> None:
        if len(row) != 4:
            raise MerbenchError(f"{FORMAT}: {path} line {line}: {len(row)} columns; expected 4 "
                                f"(utterance id, transcript, video number, label)")
        self.id, self.text, self.line = row[0].strip(), row[1].strip(), line
        match = UTTERANCE_ID.match(self.id)
        if not match:
            raise MerbenchError(f"{FORMAT}: {path} line {line}: id {excerpt(self.id)} is not of the form "
                                f"<video id>_<n>")
        self.video, self.n = match.group(1), int(match.group(2))
        if not self.text:
            raise MerbenchError(f"{FORMAT}: {path} line {line} ({self.id}): empty transcript; "
                                f"expected the utterance's words")
        self.label = _label(row[3], path, line)


def _transcripts(path: Path) -> list[_Utterance]:
    out: list[_Utterance] = []
    first_line: dict[str, int] = {}
    rows = _rows(path)
    if not rows:
        raise MerbenchError(f"{FORMAT}: {path} has no rows; expected one per utterance (utterance id, "
                            f"transcript, video number, label)")
    for line, row in enumerate(rows, 1):
        u = _Utterance(row, path, line)
        if u.id in first_line:
            raise MerbenchError(f"{FORMAT}: {path} lines {first_line[u.id]} and {line} both hold "
                                f"utterance {u.id!r}; expected each id once")
        first_line[u.id] = line
        out.append(u)
    return out


def _index(path: Path, n_transcripts: int) -> list[int]:
    """Column 0 of text_<split>.csv: row numbers into transcripts.csv."""
    out = []
    for line, row in enumerate(_rows(path), 1):
        cell = row[0].strip()
        if not cell.isdigit() or len(cell) > len(str(n_transcripts)) or int(cell) >= n_transcripts:
            raise MerbenchError(f"{FORMAT}: {path} line {line}: row number {excerpt(cell)} is not a row of "
                                f"{TRANSCRIPTS}; expected a whole number in 0..{n_transcripts - 1}")
        out.append(int(cell))
    return out


def _features(path: Path, dim: int, n: int, index_path: Path, nonfinite: str,
              fixed: dict[str, int], modality: str) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """(n, dim) float32 features of a ``<m>_<split>0.csv`` and its label cells (cell, line)."""
    rows = _rows(path)
    if len(rows) != n:
        raise MerbenchError(f"{FORMAT}: {path} has {len(rows)} rows; expected {n}, one per row of "
                            f"{index_path.name}")
    values = np.empty((n, dim), dtype=np.float32)
    for i, row in enumerate(rows):
        if len(row) != dim + 1:
            raise MerbenchError(f"{FORMAT}: {path} line {i + 1}: {len(row)} columns; expected "
                                f"{dim + 1} ({dim} {modality} features, then the label)")
        try:
            values[i] = [float(c) for c in row[:dim]]
        except ValueError:
            j = next(j for j, c in enumerate(row[:dim]) if not _is_number(c))
            raise MerbenchError(f"{FORMAT}: {path} line {i + 1} column {j + 1}: {excerpt(row[j])} is not a "
                                f"number; expected {dim} {modality} features") from None
    bad = ~np.isfinite(values)
    if bad.any():
        if nonfinite != "zero":
            i, j = (int(x) for x in np.argwhere(bad)[0])
            raise MerbenchError(f"{FORMAT}: {path} line {i + 1} column {j + 1}: {excerpt(rows[i][j])}; "
                                f"expected finite features (option nonfinite='zero' sets them to 0)")
        values[bad] = 0
        fixed[modality] = fixed.get(modality, 0) + int(bad.sum())
    return values, [(row[-1], i + 1) for i, row in enumerate(rows)]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_mosi_bclstm(root: Path, *, labels: str | None = None, protocol: str | None = None,
                     fold: int | None = None, modalities: Sequence[str] = (),
                     nonfinite: str = "error") -> RawCorpus:
    """Read the bc-LSTM release folder at ``root`` (the repository's ``data/``)."""
    labels = choose(FORMAT, "labels", labels or "binary", list(LABEL_SETS))
    protocol = choose(FORMAT, "protocol", protocol or "unseen-valid", PROTOCOLS)
    check_fold(FORMAT, protocol, fold)
    modalities = check_modalities(FORMAT, modalities)
    choose(FORMAT, "nonfinite", nonfinite, NONFINITE)
    root = Path(root)
    transcripts_path = require_file(root / TRANSCRIPTS, FORMAT, "utterance ids, transcripts and labels")
    transcripts = _transcripts(transcripts_path)

    def feature_path(m: str, split: str) -> Path:
        stem = FILES[m][0]
        return root / stem / f"{stem}_{split}0.csv"

    present = [m for m in MODALITIES if all(feature_path(m, s).is_file() for s in RELEASE_SPLITS)]
    for m in modalities or MODALITIES:
        if m not in present and not (m == "text" and modalities):  # transcripts can serve text
            missing = next(feature_path(m, s) for s in RELEASE_SPLITS if not feature_path(m, s).is_file())
            require_file(missing, FORMAT, f"{m} features")

    sources: list[Path] = [transcripts_path]
    fixed: dict[str, int] = {}
    named_by: dict[int, tuple[Path, int]] = {}  # transcripts row -> (index file, line)
    split_of: dict[str, tuple[str, Path, int]] = {}  # video -> (split, index file, line)
    members: dict[str, list[tuple[_Utterance, dict[str, np.ndarray]]]] = {}
    for split in RELEASE_SPLITS:
        index_path = require_file(root / f"text_{split}.csv", FORMAT,
                                  f"row numbers into {TRANSCRIPTS} of the {split} utterances")
        index = _index(index_path, len(transcripts))
        sources.append(index_path)
        columns = {}
        for m in present:
            path = feature_path(m, split)
            columns[m] = _features(path, FILES[m][1], len(index), index_path, nonfinite, fixed, m)
            sources.append(path)
        for i, row in enumerate(index):
            u = transcripts[row]
            if row in named_by:
                other, line = named_by[row]
                raise MerbenchError(f"{FORMAT}: {other} line {line} and {index_path} line {i + 1} both "
                                    f"name {TRANSCRIPTS} row {row} ({u.id}); expected each utterance once")
            named_by[row] = (index_path, i + 1)
            for m, (_, label_cells) in columns.items():
                cell, line = label_cells[i]
                if _label(cell, feature_path(m, split), line) != u.label:
                    raise MerbenchError(
                        f"{FORMAT}: {feature_path(m, split)} line {line}: label {cell} disagrees with "
                        f"{TRANSCRIPTS} line {u.line} ({u.id}: {u.label}); expected the same label")
            first = split_of.setdefault(u.video, (split, index_path, i + 1))
            if first[0] != split:
                raise MerbenchError(f"{FORMAT}: video {u.video!r} has utterances in {first[1]} line "
                                    f"{first[2]} and {index_path} line {i + 1}; expected one split per video")
            members.setdefault(u.video, []).append((u, {m: values[i] for m, (values, _) in columns.items()}))

    valid_videos, valid_from = VALIDATION[protocol]
    dialogues = []
    for video, utterances in members.items():
        split = split_of[video][0]
        if video in valid_videos:
            if split != valid_from:
                raise MerbenchError(f"{FORMAT}: video {video!r} is a validation video of protocol "
                                    f"{protocol} but is in {split_of[video][1]}; expected a {SPLIT_WORDS[valid_from]} video")
            split = "valid"
        utterances.sort(key=lambda pair: (pair[0].n, pair[0].id))
        dialogues.append(RawDialogue(
            video, split,
            [RawUtterance(u.id, video, u.label, text=u.text) for u, _ in utterances],
            features={m: [feats[m] for _, feats in utterances] for m in present}))

    unused = len(transcripts) - len(named_by)
    warnings = [f"{FORMAT}: {unused} rows of {transcripts_path} are in neither text_train.csv nor "
                f"text_test.csv; left out"] if unused else []
    corpus = RawCorpus("mosi", "classification", list(LABEL_SETS[labels]), dialogues, protocol,
                       info={"warnings": warnings})
    reference = f"the bc-LSTM release under protocol {protocol}"
    corpus = finish(corpus, FORMAT, COUNTS[protocol], reference, sources, {
        "labels": labels, "protocol": protocol, "unused_transcripts": unused,
        "validation": f"the {len(valid_videos)} fixed {SPLIT_WORDS[valid_from]} videos of protocol {protocol}",
        "nonfinite_zeroed": fixed, "modalities_read": present})
    corpus.info["warnings"] += [
        f"{FORMAT}: {split} has {corpus.info['dialogue_counts'][split]} videos; {reference} has {want}"
        for split, want in VIDEO_COUNTS[protocol].items() if corpus.info["dialogue_counts"][split] != want]
    return corpus
