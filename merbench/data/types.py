"""The corpus a reader returns: dialogues of utterances with per-modality features.

A reader (one module per file format, or the synthetic generator) builds a ``Corpus``; the
training loop never sees files. Features per utterance are either one vector ``(D,)`` or a
frame sequence ``(T, D)``; every utterance of a corpus uses the same form per modality.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from merbench.registry import closest

MODALITIES = ("audio", "text", "vision")
# Short names used in the papers' ablation tables (S = speech).
MODALITY_LETTERS = {"audio": "S", "text": "T", "vision": "V"}
# What users call a modality instead of its key: a hint by meaning, where spelling would
# suggest the wrong one ("sound" is closer to "vision" than to "audio" letter by letter).
MODALITY_SYNONYMS = {
    **dict.fromkeys(("speech", "sound", "voice", "acoustic", "acoustics", "wav", "s", "a"), "audio"),
    **dict.fromkeys(("language", "lexical", "transcript", "transcription", "words", "t", "txt"), "text"),
    **dict.fromkeys(("video", "visual", "face", "faces", "image", "images", "v"), "vision"),
}


def modality_hint(name: str) -> str:
    """`` (did you mean 'audio'?)`` for a name that is not a modality key: by meaning first
    (MODALITY_SYNONYMS), else by spelling."""
    meant = MODALITY_SYNONYMS.get(str(name).strip().lower())
    if meant is not None:
        return f" (did you mean {meant!r}?)"
    return closest(name, MODALITIES)


@dataclass
class Dialogue:
    """One conversation (or, for corpora without dialogue, one video with its clips)."""

    id: str
    split: str  # "train" | "valid" | "test"
    speakers: np.ndarray  # (L,) int, per-dialogue speaker index
    labels: np.ndarray  # (L,) int class id; -1 where the corpus has none
    values: np.ndarray  # (L,) float regression target; NaN where the corpus has none
    features: dict[str, list[np.ndarray]]  # modality -> per utterance (D,) or (T, D) float32
    utterance_ids: list[str] = field(default_factory=list)
    session: str | None = None  # e.g. IEMOCAP "Ses01"; used by leave-one-session-out
    # Generated corpora only: modality -> (L,) bool, True where the generator replaced that
    # modality of the utterance by noise (tests of reliability weighting read it).
    corrupted: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(len(self.labels))


@dataclass
class Corpus:
    """A whole dataset under one protocol, ready to be batched."""

    name: str
    task: str  # "classification" | "regression"
    label_names: list[str]
    dialogues: list[Dialogue]
    protocol: str = "standard"
    info: dict[str, Any] = field(default_factory=dict)  # counts, source files, warnings

    @property
    def modalities(self) -> list[str]:
        if not self.dialogues:
            return []
        return [m for m in MODALITIES if m in self.dialogues[0].features]

    @property
    def dims(self) -> dict[str, int]:
        first = self.dialogues[0]
        return {m: int(first.features[m][0].shape[-1]) for m in self.modalities}

    @property
    def frames(self) -> dict[str, bool]:
        """Per modality: True when utterances are frame sequences ``(T, D)``."""
        first = self.dialogues[0]
        return {m: first.features[m][0].ndim == 2 for m in self.modalities}

    def split(self, name: str) -> list[Dialogue]:
        return [d for d in self.dialogues if d.split == name]

    def split_names(self) -> list[str]:
        return [s for s in ("train", "valid", "test") if any(d.split == s for d in self.dialogues)]

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        dialogues = self.dialogues if split is None else self.split(split)
        labels = np.concatenate([d.labels for d in dialogues]) if dialogues else np.array([])
        return {n: int((labels == i).sum()) for i, n in enumerate(self.label_names)}

    def counts(self) -> dict[str, int]:
        return {s: int(sum(len(d) for d in self.split(s))) for s in self.split_names()}

    def fingerprint(self) -> str:
        """sha256 over everything a model sees: ids, splits, labels, speakers, features."""
        h = hashlib.sha256()
        h.update(f"{self.name}|{self.task}|{self.protocol}|{self.label_names}".encode())
        for d in self.dialogues:
            h.update(f"{d.id}|{d.split}".encode())
            for arr in (d.speakers, d.labels, d.values):
                h.update(np.ascontiguousarray(arr).tobytes())
            for m in sorted(d.features):
                h.update(m.encode())
                for x in d.features[m]:
                    h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        return h.hexdigest()

    def data_fingerprint(self) -> str:
        """The fingerprint of the data as read, the one a run records: a training-time transform
        of the features (``train.standardize``) reads no other data, so runs with and without it
        share a table and a paired test."""
        return self.info.get("read_fingerprint") or self.fingerprint()

    def standardized(self) -> "Corpus":
        """A copy whose every feature dimension is z-scored with the training split's mean and
        standard deviation (frames of a sequence pooled with the vectors of other utterances);
        a dimension constant on train is centred only. ``info["standardized"]`` says so."""
        train = self.split("train")
        dialogues = [Dialogue(d.id, d.split, d.speakers, d.labels, d.values, dict(d.features), d.utterance_ids,
                              d.session, d.corrupted) for d in self.dialogues]
        for m in self.modalities:
            rows = np.concatenate([x.reshape(-1, x.shape[-1]) for d in train for x in d.features[m]]).astype(np.float64)
            mean, std = rows.mean(0), rows.std(0)
            std[std < 1e-8] = 1.0
            for d in dialogues:
                d.features[m] = [((x - mean) / std).astype(np.float32) for x in d.features[m]]
        return Corpus(self.name, self.task, self.label_names, dialogues, self.protocol,
                      {**self.info, "standardized": True, "read_fingerprint": self.data_fingerprint()})

    def select_modalities(self, modalities: list[str]) -> "Corpus":
        """A view of the corpus with only ``modalities`` kept (order of MODALITIES)."""
        keep = [m for m in MODALITIES if m in modalities]
        dialogues = [
            Dialogue(
                d.id, d.split, d.speakers, d.labels, d.values,
                {m: d.features[m] for m in keep}, d.utterance_ids, d.session,
                None if d.corrupted is None else {m: d.corrupted[m] for m in keep},
            )
            for d in self.dialogues
        ]
        return Corpus(self.name, self.task, self.label_names, dialogues, self.protocol, self.info)


# --- What a file-format reader returns before feature extraction --------------------------


@dataclass
class RawUtterance:
    """One utterance as a release describes it: text and where its media lie."""

    id: str
    speaker: str
    label: int  # class id in the corpus's label set; -1 = none
    value: float = float("nan")  # regression target (MOSEI sentiment); NaN = none
    text: str | None = None
    audio_path: str | None = None  # a wav per utterance, or a whole-dialogue file + interval
    audio_interval: tuple[float, float] | None = None  # seconds, within audio_path
    video_path: str | None = None
    video_interval: tuple[float, float] | None = None  # seconds, within video_path


@dataclass
class RawDialogue:
    id: str
    split: str  # "train" | "valid" | "test"
    utterances: list[RawUtterance]
    session: str | None = None
    # Formats that ship features (DialogueRNN pickles, MMSA pickles, .csd files) fill this:
    # modality -> per utterance (D,) or (T, D) float32.
    features: dict[str, list[np.ndarray]] = field(default_factory=dict)


@dataclass
class RawCorpus:
    """A parsed release: what extraction turns into a ``Corpus``."""

    name: str
    task: str
    label_names: list[str]
    dialogues: list[RawDialogue]
    protocol: str
    info: dict[str, Any] = field(default_factory=dict)  # counts, warnings, source files

    def fingerprint(self) -> str:
        """sha256 of what was read: ids, splits, speakers, labels, texts, media paths, features."""
        h = hashlib.sha256(f"{self.name}|{self.task}|{self.protocol}|{self.label_names}".encode())
        for d in self.dialogues:
            h.update(f"{d.id}|{d.split}|{d.session}".encode())
            for u in d.utterances:
                h.update(repr((u.id, u.speaker, u.label, u.value, u.text, u.audio_path,
                               u.audio_interval, u.video_path, u.video_interval)).encode())
            for m in sorted(d.features):
                for x in d.features[m]:
                    h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        return h.hexdigest()
