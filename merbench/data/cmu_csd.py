"""CMU-MOSEI and CMU-MOSI as CMU Multimodal SDK computational sequences (``.csd``, HDF5): ship
features. One reader, two formats: ``mosei_csd`` and ``mosi_csd`` differ in their file names,
label columns, folds and release counts (``CsdFormat``, instances at the bottom).

Layout of each .csd (mmsdk computational_sequence/file_ops.py): one top group named after
the sequence, holding ``data/<video_id>/features`` (N, D) and ``data/<video_id>/intervals``
(N, 2) in seconds, and ``metadata``. Files read from the root folder (MOSEI / MOSI names):
- labels (required): ``CMU_MOSEI_Labels.csd``, per labelled segment [sentiment, happy, sad,
  anger, surprise, disgust, fear]; ``CMU_MOSI_Opinion_Labels.csd``, per segment [sentiment].
  Each segment is one utterance ``<video>[<k>]`` (k = segment index in start-time order).
- text 300-d GloVe per word (``CMU_MOSEI_TimestampedWordVectors.csd`` /
  ``CMU_MOSI_TimestampedWordVectors.csd``), audio 74-d COVAREP (``CMU_MOSEI_COVAREP.csd`` /
  ``CMU_MOSI_COVAREP.csd``), vision 35-d FACET 4.2 (``CMU_MOSEI_VisualFacet42.csd`` /
  ``CMU_MOSI_Visual_Facet_42.csd``): the frames whose interval overlaps a segment's interval
  are its features (T, D).
- words (optional, ``CMU_MOSEI_TimestampedWords.csd`` / ``CMU_MOSI_TimestampedWords.csd``):
  the words of a segment, joined, are its transcript ("sp" silences left out).
- folds: ``folds.json`` ({"train": [...], "valid": [...], "test": [...]} video ids) or
  ``folds.csv`` (columns video_id, split), or option ``folds``. The SDK's standard folds are
  code in mmsdk, not a file: MOSEI's are not shipped with merbench (the user writes them),
  MOSI's 93 ids are (``_cmu.MOSI_FOLDS``) and are used unless option ``folds`` names a file.
  Videos in no fold are left out (counted in ``info["unassigned_videos"]``).
Only the feature files of the modalities asked are read (all present ones when none is
asked). A segment with no overlapping frame gets one zero frame (counted in
``info["empty_cuts"]``); a video absent from a feature file loses its segments, as the SDK's
alignment drops it (counted in ``info["videos_without_features"]``). Audio -inf is set to 0
(as MMSA does for the same COVAREP features); other NaN/inf is an error unless
``nonfinite="zero"``. MOSEI's six emotion intensities go to ``info["emotions"]``
({utterance id: [6 floats]}, names in ``info["emotion_names"]``).
docs/datasets/mosei.md and docs/datasets/mosi.md describe it for users.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from merbench.data import _cmu as cmu
from merbench.data._common import (
    NONFINITE, check_modalities, checked_rows, choose, decode_file, feature_array, finish,
    require_file,
)
from merbench.data.types import RawCorpus, RawDialogue, RawUtterance
from merbench.errors import MerbenchError, excerpt
from merbench.optional import import_optional

SPLITS = ("train", "valid", "test")
DIMS = {"text": 300, "audio": 74, "vision": 35}
SHIPPED_FOLDS = "merbench's copy of the SDK's standard folds"


@dataclass(frozen=True)
class CsdFormat:
    """The .csd files of one corpus: their names, the label columns, the release facts."""

    release: cmu.Release
    labels_file: str
    words_file: str
    feature_files: dict[str, str]  # modality -> file name
    label_columns: tuple[str, ...]  # sentiment first

    @property
    def format(self) -> str:
        return f"{self.release.name}_csd"

    @property
    def description(self) -> str:
        folds = "" if self.release.folds else " and folds.json"
        return (f"CMU Multimodal SDK .csd files ({self.labels_file} + WordVectors / COVAREP / "
                f"Facet 4.2){folds}")

    @property
    def looks_for(self) -> str:
        return self.labels_file

    def detect(self, root: Path) -> bool:
        return root.is_dir() and (root / self.labels_file).is_file()

    def read(self, root: Path, *, labels: str | None = None, protocol: str | None = None,
             fold: int | None = None, modalities: Sequence[str] = (),
             folds: str | Path | None = None, nonfinite: str = "error") -> RawCorpus:
        """Read the .csd folder at ``root`` with the folds file ``folds`` (default: the shipped
        standard folds where merbench has them, else root/folds.json or root/folds.csv)."""
        fmt = self.format
        labels, protocol = cmu.resolve(fmt, labels, protocol, fold)
        modalities = check_modalities(fmt, modalities)
        choose(fmt, "nonfinite", nonfinite, NONFINITE)
        root = Path(root)
        labels_path = require_file(root / self.labels_file, fmt, f"per-segment {', '.join(self.label_columns)}")
        split_of, folds_source = _folds(self, root, folds)

        files = self.feature_files
        wanted = list(modalities) or [m for m, name in files.items() if (root / name).is_file()]
        if "text" in modalities and not (root / files["text"]).is_file():
            wanted.remove("text")  # transcripts alone can serve text, checked below
            require_file(root / self.words_file, fmt, f"{files['text']} or {self.words_file} for text")
        sources: list[Path | str] = [labels_path, folds_source]
        opened: dict[str, _Sequence] = {}
        try:
            label_seq = _Sequence(labels_path, fmt)
            opened["labels"] = label_seq
            for m in wanted:
                path = require_file(root / files[m], fmt, f"{m} features")
                opened[m] = _Sequence(path, fmt)
                sources.append(path)
            if (root / self.words_file).is_file():
                opened["words"] = _Sequence(root / self.words_file, fmt)
                sources.append(root / self.words_file)
            corpus = _read(self, label_seq, opened, wanted, split_of, nonfinite, labels, protocol)
        finally:
            for seq in opened.values():
                seq.close()
        validation = "the valid list of " + (folds_source if isinstance(folds_source, str) else folds_source.name)
        return finish(corpus, fmt, self.release.counts, self.release.reference, sources, {
            "labels": labels, "protocol": protocol, "validation": validation})


class _Sequence:
    """One opened .csd: ``videos`` and ``get(video) -> (features, intervals)``."""

    def __init__(self, path: Path, fmt: str) -> None:
        h5py = import_optional("h5py", f"the {fmt} reader")

        self.path, self.fmt = path, fmt
        try:
            self.file = h5py.File(path, "r")
        except OSError as e:
            raise MerbenchError(f"{fmt}: {path} is not an HDF5 computational sequence ({e})") from None
        tops = [k for k in self.file if isinstance(self.file[k], h5py.Group) and "data" in self.file[k]]
        if not tops:
            raise MerbenchError(f"{fmt}: {path} has no top group holding 'data'; expected "
                                f"<sequence name>/data/<video id>/features and intervals")
        self.name = tops[0]
        self.data = self.file[self.name]["data"]
        self.videos = set(self.data)

    def get(self, video: str) -> tuple[np.ndarray, np.ndarray]:
        entry = self.data[video]
        for key in ("features", "intervals"):
            if key not in entry:
                raise MerbenchError(f"{self.fmt}: {self.path}: {self.name}/data/{video} has no "
                                    f"{key!r}; expected features and intervals")
        features, intervals = entry["features"][()], np.asarray(entry["intervals"][()], dtype=float)
        if intervals.ndim != 2 or intervals.shape[1] != 2 or len(intervals) != len(features):
            raise MerbenchError(f"{self.fmt}: {self.path}: {self.name}/data/{video}/intervals has "
                                f"shape {intervals.shape}; expected ({len(features)}, 2)")
        return features, intervals

    def close(self) -> None:
        self.file.close()


def _folds(spec: CsdFormat, root: Path, folds: str | Path | None) -> tuple[dict[str, str], Path | str]:
    """Video id -> split: from option ``folds``, else the shipped standard folds, else the
    folds file in ``root``; and where they came from."""
    fmt = spec.format
    if folds is None and spec.release.folds:
        return {v: s for s, videos in spec.release.folds.items() for v in videos}, SHIPPED_FOLDS
    candidates = [Path(folds)] if folds is not None else [root / "folds.json", root / "folds.csv"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise MerbenchError(
            f"{fmt}: no {' or '.join(str(p) for p in candidates)}; the SDK's standard "
            f"train/valid/test video lists are not shipped with merbench: write them as "
            f'{{"train": [...], "valid": [...], "test": [...]}} to {root / "folds.json"}'
        )
    pairs: list[tuple[str, str]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(decode_file(path.read_bytes())[0], newline=""))
        rows = list(checked_rows(reader, path, fmt, "a CSV file with columns video_id, split"))
        if not reader.fieldnames or {"video_id", "split"} - set(reader.fieldnames):
            raise MerbenchError(f"{fmt}: {path} has columns {excerpt(reader.fieldnames)}; expected "
                                f"video_id, split")
        pairs = [((r["video_id"] or "").strip(), (r["split"] or "").strip()) for r in rows]
    else:
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MerbenchError(f"{fmt}: {path} is not valid JSON ({e})") from None
        if not isinstance(table, dict) or set(table) != set(SPLITS) or not all(
                isinstance(v, list) for v in table.values()):
            held = sorted(table) if isinstance(table, dict) else type(table).__name__
            raise MerbenchError(f"{fmt}: {path} holds {held}; expected lists under exactly "
                                f"train, valid, test")
        pairs = [(str(v), s) for s in SPLITS for v in table[s]]
    split_of: dict[str, str] = {}
    for video, split in pairs:
        if split not in SPLITS:
            raise MerbenchError(f"{fmt}: {path}: video {video!r} has split {split!r}; "
                                f"expected train, valid or test")
        if split_of.get(video, split) != split:
            raise MerbenchError(f"{fmt}: {path}: video {video!r} is in {split_of[video]} and {split}")
        split_of[video] = split
    return split_of, path


def _cut(features: np.ndarray, intervals: np.ndarray, start: float, end: float) -> np.ndarray:
    """Rows whose interval overlaps [start, end]."""
    return features[(intervals[:, 0] < end) & (intervals[:, 1] > start)]


def _words(words: np.ndarray) -> list[str]:
    out = []
    for w in np.asarray(words).reshape(-1):
        w = w.decode("utf-8", "replace") if isinstance(w, bytes) else str(w)
        out.append(w.strip())
    return out


def _read(spec: CsdFormat, label_seq: _Sequence, opened: dict[str, _Sequence], wanted: list[str],
          split_of: dict[str, str], nonfinite: str, labels: str, protocol: str) -> RawCorpus:
    fmt, columns = spec.format, spec.label_columns
    emotions: dict[str, list[float]] = {}
    empty_cuts: dict[str, int] = {}
    without: dict[str, int] = {}
    fixed: dict[str, int] = {}
    neg_inf = 0
    unassigned = 0
    dialogues = []
    for video in sorted(label_seq.videos):
        if video not in split_of:
            unassigned += 1
            continue
        values, segments = label_seq.get(video)
        values = np.asarray(values, dtype=float)  # (N, len(columns))
        if values.ndim != 2 or values.shape[1] != len(columns):
            raise MerbenchError(f"{fmt}: {label_seq.path}: video {video!r} labels have shape "
                                f"{values.shape}; expected (N, {len(columns)}): {', '.join(columns)}")
        order = np.argsort(segments[:, 0], kind="stable")
        absent = [m for m in wanted if video not in opened[m].videos]
        if absent:
            for m in absent:
                without[m] = without.get(m, 0) + 1
            continue
        streams = {}
        for m in wanted:
            feats, intervals = opened[m].get(video)
            if m == "audio":
                neg = np.asarray(feats) == -np.inf
                neg_inf += int(neg.sum())
                feats = np.where(neg, 0.0, feats)
            streams[m] = (feature_array(feats, fmt, opened[m].path, f"video {video!r}", m,
                                        (DIMS[m],), 2, nonfinite, fixed), intervals)
        words = None
        if "words" in opened and video in opened["words"].videos:
            raw_words, word_intervals = opened["words"].get(video)
            words = (np.array(_words(raw_words), dtype=object), word_intervals)
        utterances, features = [], {m: [] for m in wanted}
        for k, row in enumerate(order):
            start, end = float(segments[row, 0]), float(segments[row, 1])
            utt_id = f"{video}[{k}]"
            value, label = cmu.sentiment(values[row, 0], fmt, f"{label_seq.path}: {utt_id}")
            text = None
            if words is not None:
                text = " ".join(w for w in _cut(words[0], words[1], start, end) if w and w != "sp")
                if not text:
                    raise MerbenchError(f"{fmt}: {opened['words'].path}: {utt_id} "
                                        f"[{start:.2f}, {end:.2f}] has no word; expected a transcript")
            utterances.append(RawUtterance(utt_id, video, label, value=value, text=text))
            if len(columns) > 1:
                emotions[utt_id] = [float(x) for x in values[row, 1:]]
            for m, (feats, intervals) in streams.items():
                cut = _cut(feats, intervals, start, end)  # (T, D)
                if not len(cut):
                    empty_cuts[m] = empty_cuts.get(m, 0) + 1
                    cut = np.zeros((1, DIMS[m]), dtype=np.float32)
                features[m].append(np.ascontiguousarray(cut, dtype=np.float32))
        if utterances:
            dialogues.append(RawDialogue(video, split_of[video], utterances, features=features))

    warnings = []
    for m, n in empty_cuts.items():
        warnings.append(f"{fmt}: {n} segments have no {m} frame in their interval; each got "
                        f"one zero frame")
    for m, n in without.items():
        warnings.append(f"{fmt}: {n} labelled videos are absent from {spec.feature_files[m]}; their "
                        f"segments are left out")
    info: dict[str, Any] = {
        "warnings": warnings, "empty_cuts": empty_cuts, "videos_without_features": without,
        "unassigned_videos": unassigned, "audio_neg_inf_zeroed": neg_inf,
        "nonfinite_zeroed": fixed, "folds_not_in_labels": len(set(split_of) - label_seq.videos),
        "sequences": {k: s.name for k, s in opened.items()},
    }
    if len(columns) > 1:
        info.update(emotions=emotions, emotion_names=list(columns[1:]))
    return RawCorpus(spec.release.name, "regression", list(cmu.LABEL_SETS[labels]), dialogues, protocol, info)


MOSEI = CsdFormat(
    cmu.MOSEI, "CMU_MOSEI_Labels.csd", "CMU_MOSEI_TimestampedWords.csd",
    {"text": "CMU_MOSEI_TimestampedWordVectors.csd", "audio": "CMU_MOSEI_COVAREP.csd",
     "vision": "CMU_MOSEI_VisualFacet42.csd"},
    ("sentiment", *cmu.EMOTIONS))
MOSI = CsdFormat(
    cmu.MOSI, "CMU_MOSI_Opinion_Labels.csd", "CMU_MOSI_TimestampedWords.csd",
    {"text": "CMU_MOSI_TimestampedWordVectors.csd", "audio": "CMU_MOSI_COVAREP.csd",
     "vision": "CMU_MOSI_Visual_Facet_42.csd"},
    ("sentiment",))
