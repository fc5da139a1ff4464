"""Writers of tiny copies of each real-dataset layout, for reader and extraction tests.

Every writer builds its files under a given folder in the release's exact layout, with
invented transcripts and random features, and returns what a test needs to check the reader.
Media (wav, avi, mp4) are real, tiny files: a reader only records their paths, an extractor
can decode them.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import wave
from pathlib import Path

import numpy as np

# --- Media ---------------------------------------------------------------------------------


def write_wav(path: Path, seconds: float = 0.05, rate: int = 16000, freq: float = 220.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())
    return path


def write_video(path: Path, frames: int = 5, size: int = 16, audio: bool = False) -> Path:
    """A tiny mpeg4 video (.avi or .mp4) with PyAV; with ``audio`` an AAC tone as well."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=16000) if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 40 * i, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        if sound is not None:
            tone = (0.3 * np.sin(np.arange(1600) / 10)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, 0
            for packet in [*sound.encode(chunk), *sound.encode(None)]:
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


# --- IEMOCAP -------------------------------------------------------------------------------

# Per dialogue kind: (last id segment, start, end, code); written to EmoEvaluation in reverse
# order so that the reader has to sort by start time.
IEMOCAP_UTTERANCES = {
    "impro01": [("F000", 1.0, 2.0, "neu"), ("M000", 2.5, 3.0, "hap"), ("F001", 3.5, 4.0, "exc"),
                ("M001", 4.5, 5.0, "xxx"), ("F002", 5.5, 6.0, "fru")],
    "script01_1": [("M000", 0.5, 1.0, "ang"), ("F000", 1.5, 2.0, "sad"), ("M001", 2.5, 3.0, "sur")],
}
IEMOCAP_KEPT = {"iemocap6": {"impro01": 4, "script01_1": 2}, "iemocap4": {"impro01": 3, "script01_1": 2}}


def iemocap_dialogues(sessions=(1, 2, 3, 4, 5)) -> list[str]:
    return [f"Ses0{s}{g}_{kind}" for s in sessions
            for g, kind in (("F", "impro01"), ("M", "script01_1"))]


def write_iemocap_raw(root: Path, sessions=(1, 2, 3, 4, 5), wav: bool = True,
                      avi: bool = False) -> list[str]:
    """The raw release folder; returns the dialogue ids."""
    dialogues = iemocap_dialogues(sessions)
    for dialogue in dialogues:
        s = int(dialogue[4])
        kind = dialogue.split("_", 1)[1]
        session = root / f"Session{s}"
        evaluation = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        transcript = []
        for last, start, end, code in reversed(IEMOCAP_UTTERANCES[kind]):
            utt = f"{dialogue}_{last}"
            evaluation += [f"[{start:.4f} - {end:.4f}]\t{utt}\t{code}\t[2.5000, 3.0000, 3.5000]",
                           "C-E1:\tNeutral;\t()", "A-E1:\tval 3; act 2; dom  2;\t()", ""]
            transcript.append(f"{utt} [{start:08.4f}-{end:08.4f}]: words of {utt}.")
            if wav:
                write_wav(session / "sentences" / "wav" / dialogue / f"{utt}.wav")
        transcript.append(f"{dialogue}_MXX0 [009.0000-009.5000]: [LAUGHTER]")
        (session / "dialog" / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
        (session / "dialog" / "transcriptions").mkdir(parents=True, exist_ok=True)
        (session / "dialog" / "EmoEvaluation" / f"{dialogue}.txt").write_text("\n".join(evaluation) + "\n")
        (session / "dialog" / "transcriptions" / f"{dialogue}.txt").write_text("\n".join(transcript) + "\n")
        if avi:
            write_video(session / "dialog" / "avi" / "DivX" / f"{dialogue}.avi")
    return dialogues


def _iemocap_tables(sessions=(1, 2, 3, 4, 5)):
    """Per dialogue: speakers, six-way label ids, texts (each utterance kept by iemocap6)."""
    ids6 = {"hap": 0, "sad": 1, "neu": 2, "ang": 3, "exc": 4, "fru": 5}
    tables = {}
    for dialogue in iemocap_dialogues(sessions):
        kind = dialogue.split("_", 1)[1]
        rows = [r for r in IEMOCAP_UTTERANCES[kind] if r[3] in ids6]
        tables[dialogue] = ([r[0][0] for r in rows], [ids6[r[3]] for r in rows],
                            [f"words of {dialogue}_{r[0]}." for r in rows],
                            [f"{dialogue}_{r[0]}" for r in rows])
    return tables


def write_iemocap_cosmic(path: Path, valid=("Ses01F_impro01",)) -> dict:
    """The COSMIC 6-item pickle; returns {dialogue: (speakers, labels, texts, utt ids)}."""
    tables = _iemocap_tables()
    test = [d for d in tables if d.startswith("Ses05")]
    train = [d for d in tables if d not in test and d not in valid]
    data = [{d: t[0] for d, t in tables.items()}, {d: t[1] for d, t in tables.items()},
            {d: t[2] for d, t in tables.items()}, train, test, list(valid)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return tables


def write_iemocap_dialoguernn(path: Path, seed: int = 0) -> dict:
    """The DialogueRNN 9-tuple; text feature column 0 = utterance index in its dialogue."""
    rng = np.random.default_rng(seed)
    tables = _iemocap_tables()
    feats = {}
    for m, dim in (("text", 100), ("audio", 100), ("vision", 512)):
        feats[m] = {}
        for d, t in tables.items():
            x = rng.normal(size=(len(t[1]), dim)).astype(np.float32)
            if m == "text":
                x[:, 0] = np.arange(len(t[1]))
            feats[m][d] = x
    test = [d for d in tables if d.startswith("Ses05")]
    data = ({d: t[3] for d, t in tables.items()}, {d: t[0] for d, t in tables.items()},
            {d: t[1] for d, t in tables.items()}, feats["text"], feats["audio"], feats["vision"],
            {d: t[2] for d, t in tables.items()}, [d for d in tables if d not in test], test)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return tables


# --- MELD ----------------------------------------------------------------------------------

MELD_HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
               "Utterance_ID", "Season", "Episode", "StartTime", "EndTime"]
# (dialogue, utterance, text, speaker, emotion, sentiment) per CSV; rows out of order on purpose.
MELD_ROWS = {
    "train": [(0, 1, "Oh, hi!", "Rachel", "joy", "positive"),
              (0, 0, "It\u2019s fine.", "Ross", "neutral", "neutral"),
              (0, 2, "No way.", "Ross", "surprise", "positive"),
              (0, 3, "Stop it.", "Monica", "anger", "negative"),
              (1, 0, "I\u2019m scared.", "Joey", "fear", "negative"),
              (1, 1, "Ew.", "Phoebe", "disgust", "negative")],
    "dev": [(0, 0, "It\u00e2\u20ac\u2122s here.", "Chandler", "sadness", "negative"),
            (0, 1, "Well\u00c2\u00a0okay.", "Monica", "neutral", "neutral"),
            (1, 0, "Wait\u00c2\u0085", "Ross", "joy", "positive")],
    "test": [(0, 0, "A caf\u00e9 au lait.", "Rachel", "neutral", "neutral"),
             (0, 1, "I\u00e2\u0080\u0099m in.", "Joey", "joy", "positive")],
}
# What the reader should make of each transcript above.
MELD_CLEAN = {"It\u2019s fine.": "It\u2019s fine.", "It\u00e2\u20ac\u2122s here.": "It\u2019s here.",
              "Well\u00c2\u00a0okay.": "Well\u00a0okay.", "Wait\u00c2\u0085": "Wait\u2026",
              "A caf\u00e9 au lait.": "A caf\u00e9 au lait.", "I\u00e2\u0080\u0099m in.": "I\u2019m in."}
MELD_FOLDERS = {"train": "train_splits", "dev": "dev_splits_complete",
                "test": "output_repeated_splits_test"}


def _csv_line(fields) -> str:
    return ",".join('"' + str(f).replace('"', '""') + '"' if "," in str(f) or '"' in str(f) else str(f)
                    for f in fields)


def write_meld_raw(root: Path, clips: bool = False) -> dict:
    """The three CSVs (train in cp1252 with a raw \\x92 byte; dev and test UTF-8 holding
    mojibake), and with ``clips`` an mp4 per utterance. Returns MELD_ROWS."""
    root.mkdir(parents=True, exist_ok=True)
    for split, rows in MELD_ROWS.items():
        lines = [_csv_line(MELD_HEADER)]
        for n, (d, u, text, speaker, emotion, sentiment) in enumerate(rows, 1):
            lines.append(_csv_line([n, text, speaker, emotion.capitalize() if n == 1 else emotion,
                                    sentiment, d, u, 1, 1, "00:00:01,000", "00:00:02,000"]))
            if clips:
                write_video(root / MELD_FOLDERS[split] / f"dia{d}_utt{u}.mp4", audio=True)
        text = "\n".join(lines) + "\n"
        data = text.encode("cp1252") if split == "train" else text.encode("utf-8")
        (root / f"{split}_sent_emo.csv").write_bytes(data)
    return MELD_ROWS


def write_meld_dialoguernn(path: Path, n_train: int = 10, n_test: int = 3, seed: int = 0) -> dict:
    """The DialogueRNN MELD 9-tuple with integer dialogue ids; returns the tables."""
    rng = np.random.default_rng(seed)
    ids, speakers, emotions, text, audio, sentences, sentiment = {}, {}, {}, {}, {}, {}, {}
    for d in range(n_train + n_test):
        n = 2 + d % 3
        ids[d] = list(range(n))
        positions = [(d + i % 2 * 3) % 9 for i in range(n)]
        speakers[d] = [list(np.eye(9)[p]) for p in positions]
        emotions[d] = [int(x) for x in rng.integers(0, 7, n)]
        sentiment[d] = [int(x) for x in rng.integers(0, 3, n)]
        text[d] = rng.normal(size=(n, 600)).astype(np.float32)
        audio[d] = rng.normal(size=(n, 300)).astype(np.float32)
        sentences[d] = [f"line {i} of {d}" for i in range(n)]
    train, test = list(range(n_train)), list(range(n_train, n_train + n_test))
    data = (ids, speakers, emotions, text, audio, sentences, train, test, sentiment)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return {"emotions": emotions, "sentiment": sentiment, "speakers": speakers, "train": train,
            "test": test, "text": text}


# --- CMU-MOSEI -----------------------------------------------------------------------------

# Per split: (video, clip, sentiment); clips out of order and numbered past 9 on purpose.
MOSEI_CLIPS = {
    "train": [("vidA", "10", 2.6), ("vidA", "2", -0.4), ("vidB", "0", 0.5), ("vidB", "1", -3.0)],
    "valid": [("vidC", "0", 1.2)],
    "test": [("vidD", "3", -1.5), ("vidD", "1", 3.0)],
}


def write_mmsa(path: Path, aligned: bool = False, text_bert_only: bool = False,
               seed: int = 0, audio_dim: int = 74, vision_dim: int = 35) -> dict:
    """An MMSA pickle (MOSEI's feature sizes by default; MOSI's: audio_dim=5, vision_dim=20).
    Unaligned: audio (N, 8, A), vision (N, 6, V), text (N, 5, 768) padded at the end, with
    lengths (and a text_bert mask); aligned: all (N, 6, D), text 300-d, zero rows in front.
    Returns per split the lengths used."""
    rng = np.random.default_rng(seed)
    data, lengths = {}, {}
    for split, clips in MOSEI_CLIPS.items():
        n = len(clips)
        entry = {"id": np.array([f"{v}$_${c}" for v, c, _ in clips], dtype=object),
                 "regression_labels": np.array([s for *_, s in clips], dtype=np.float32),
                 "raw_text": [f"clip {c} of {v}" for v, c, _ in clips],
                 "classification_labels": np.zeros(n)}
        if aligned:
            t = 6
            keep = np.array([2 + i % 4 for i in range(n)])  # real frames at the end
            for key, dim in (("audio", audio_dim), ("vision", vision_dim), ("text", 300)):
                x = rng.normal(size=(n, t, dim)).astype(np.float32)
                for i in range(n):
                    x[i, : t - keep[i]] = 0
                entry[key] = x
            lengths[split] = {"all": keep}
        else:
            la = np.array([3 + i % 5 for i in range(n)])
            lv = np.array([1 + i % 6 for i in range(n)])
            lt = np.array([2 + i % 3 for i in range(n)])
            for key, dim, t, ln in (("audio", audio_dim, 8, la), ("vision", vision_dim, 6, lv), ("text", 768, 5, lt)):
                x = rng.normal(size=(n, t, dim)).astype(np.float32)
                for i in range(n):
                    x[i, ln[i]:] = 0 if key != "text" else 0.5  # BERT pads are not zero
                entry[key] = x
            mask = (np.arange(5)[None] < lt[:, None]).astype(np.int64)
            entry["text_bert"] = np.stack([rng.integers(100, 200, (n, 5)), mask, np.zeros((n, 5), int)], 1)
            entry["audio_lengths"], entry["vision_lengths"] = la, lv
            lengths[split] = {"audio": la, "vision": lv, "text": lt}
            if text_bert_only:
                del entry["text"]
        data[split] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return lengths


# Labelled segments per video: (start, end, [sentiment, happy, sad, anger, surprise, disgust, fear]).
MOSEI_SEGMENTS = {
    "vidA": [(2.0, 3.0, [1.0, 1.0, 0, 0, 0, 0, 0]), (0.0, 1.0, [-2.0, 0, 2.0, 0.3, 0, 0, 0])],
    "vidB": [(0.5, 1.5, [0.4, 0, 0, 0, 1.0, 0, 0])],
    "vidC": [(0.0, 2.0, [-0.6, 0, 0, 0, 0, 0.6, 1.0])],
    "vidX": [(0.0, 1.0, [0.0, 0, 0, 0, 0, 0, 0])],  # in no fold
}
MOSEI_FOLDS = {"train": ["vidA"], "valid": ["vidB"], "test": ["vidC"]}
# MOSI's labels are [sentiment] only; its standard folds ship with merbench: 2iD-tVS8NPw is a
# training video, WKA5OygbEKI a validation one, tmZoasNr4rU a test one.
MOSI_SEGMENTS = {
    "2iD-tVS8NPw": [(2.0, 3.0, [1.0]), (0.0, 1.0, [-2.0])],
    "WKA5OygbEKI": [(0.5, 1.5, [0.4])],
    "tmZoasNr4rU": [(0.0, 2.0, [-0.6])],
    "vidX": [(0.0, 1.0, [0.0])],  # in no fold
}
CSD = {  # per dataset: the segments, the labels file and its top group, the other files by role
    "mosei": (MOSEI_SEGMENTS, ("CMU_MOSEI_Labels.csd", "All Labels"), {
        "text": "CMU_MOSEI_TimestampedWordVectors.csd", "audio": "CMU_MOSEI_COVAREP.csd",
        "vision": "CMU_MOSEI_VisualFacet42.csd", "words": "CMU_MOSEI_TimestampedWords.csd"}),
    "mosi": (MOSI_SEGMENTS, ("CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels"), {
        "text": "CMU_MOSI_TimestampedWordVectors.csd", "audio": "CMU_MOSI_COVAREP.csd",
        "vision": "CMU_MOSI_Visual_Facet_42.csd", "words": "CMU_MOSI_TimestampedWords.csd"}),
}
MOSEI_WORDS = ["hello", "sp", "there", "good", "day", "sp", "to", "you"]


def _write_sequence(path: Path, name: str, entries: dict) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        top = f.create_group(name)
        data = top.create_group("data")
        for video, (features, intervals) in entries.items():
            group = data.create_group(video)
            group.create_dataset("features", data=features)
            group.create_dataset("intervals", data=np.asarray(intervals, dtype=np.float64))
        meta = top.create_group("metadata")
        meta.create_dataset("root name", data=name)


def write_csd(root: Path, dataset: str = "mosei", folds: bool = True, seed: int = 0,
              skip: tuple[str, ...] = ()) -> None:
    """Labels, WordVectors (1 word / 0.25 s), COVAREP (10 frames / s), Facet (5 frames / s)
    and Words .csd files for the dataset's segments (videos last 3 s), plus MOSEI's folds.json
    (``folds``; MOSI's folds ship with merbench)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    segments, (labels_file, labels_top), files = CSD[dataset]
    labels = {v: (np.array([s[2] for s in segs], dtype=np.float32), [s[:2] for s in segs])
              for v, segs in segments.items()}
    _write_sequence(root / labels_file, labels_top, labels)

    def frames(rate: float, dim: int) -> dict:
        step = 1.0 / rate
        starts = np.arange(0, 3.0, step)
        return {v: (rng.normal(size=(len(starts), dim)).astype(np.float32),
                    np.stack([starts, starts + step], 1)) for v in segments}

    sequences = {files["text"]: ("glove_vectors", frames(4, 300)), files["audio"]: ("COVAREP", frames(10, 74)),
                 files["vision"]: ("FACET 4.2", frames(5, 35))}
    for name, (top, entries) in sequences.items():
        if name not in skip:
            _write_sequence(root / name, top, entries)
    starts = np.arange(0, 3.0, 0.25)
    words = np.array([[w.encode()] for w in (MOSEI_WORDS * 2)[: len(starts)]])
    if files["words"] not in skip:
        _write_sequence(root / files["words"], "words",
                        {v: (words, np.stack([starts, starts + 0.25], 1)) for v in segments})
    if folds and dataset == "mosei":
        (root / "folds.json").write_text(json.dumps(MOSEI_FOLDS))


# CMU-MOSI, bc-LSTM release. Per release split: (video, n, transcript, label). Positions past 9
# and out of order on purpose; 5W7Z1C_fDaE is a validation video of protocol bclstm,
# 2WGyTLYerpo one of protocol unseen-valid.
MOSI_BCLSTM = {
    "train": [("trainVidA", 2, "IT WAS FINE", 1), ("trainVidA", 10, "BUT FAR TOO LONG", 0),
              ("trainVidA", 1, "SO I SAW IT", 1), ("5W7Z1C_fDaE", 1, "GREAT ACTING", 1),
              ("5W7Z1C_fDaE", 2, "A BAD PLOT", 0), ("trainVidB", 1, "I LOVED IT", 1),
              ("trainVidB", 3, "REALLY LOVED IT", 1), ("trainVidB", 2, "HATED THE END", 0)],
    "test": [("testVidA", 2, "NICE MUSIC", 1), ("testVidA", 1, "A BORING FILM", 0),
             ("2WGyTLYerpo", 1, "MEH", 0)],
}
MOSI_BCLSTM_FILES = {"text": ("text", 100), "audio": ("audio", 73), "vision": ("video", 100)}


def _write_rows(path: Path, rows: list[list]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)  # the release quotes every field


def mosi_bclstm_features(utterance: str, modality: str) -> np.ndarray:
    """The features the fixture gives an utterance: a function of its id, not of any row."""
    seed = int(hashlib.sha256(f"{utterance}/{modality}".encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed).normal(size=MOSI_BCLSTM_FILES[modality][1]).astype(np.float32)


def write_mosi_bclstm(root: Path) -> Path:
    """The bc-LSTM folder ``root``: transcripts.csv (rows of both splits mixed), text_<split>.csv
    naming its rows in another order, the three <m>_<split>0.csv in that order, and an .arff
    copy to ignore."""
    rows = [(v, n, t, y) for split in ("test", "train") for v, n, t, y in MOSI_BCLSTM[split]]
    rows = rows[1::2] + rows[::2]
    _write_rows(root / "transcripts.csv", [[f"{v}_{n}", t, k + 1, y] for k, (v, n, t, y) in enumerate(rows)])
    row_of = {f"{v}_{n}": k for k, (v, n, _, _) in enumerate(rows)}
    for split, utterances in MOSI_BCLSTM.items():
        ids = [f"{v}_{n}" for v, n, _, _ in reversed(utterances)]
        label = {f"{v}_{n}": y for v, n, _, y in utterances}
        _write_rows(root / f"text_{split}.csv",
                    [[row_of[u], *np.round(mosi_bclstm_features(u, "text"), 5).tolist()] for u in ids])
        for m, (stem, _) in MOSI_BCLSTM_FILES.items():
            _write_rows(root / stem / f"{stem}_{split}0.csv",
                        [[*mosi_bclstm_features(u, m).tolist(), label[u]] for u in ids])
    (root / "text" / "text_train0.arff").write_text("@relation not read\n")
    return root
