"""CMU-MOSEI and CMU-MOSI in the MMSA pickles (``unaligned_50.pkl`` / ``aligned_50.pkl``):
ship features. One reader, two formats: ``mosei_mmsa`` and ``mosi_mmsa`` differ only in the
feature sizes and release counts they check (``MmsaFormat``, instances at the bottom).

Layout (thuiar/MMSA, src/MMSA/data_loader.py): a dict ``train`` / ``valid`` / ``test``, each
a dict of arrays over N clips: ``id`` ("videoid$_$clipid"), ``regression_labels`` (N,),
``audio`` (N, T, A), ``vision`` (N, T, V), ``text`` (N, T, 768 or 300) and / or
``text_bert`` (N, 3, T) token ids, mask and segment ids; optional ``raw_text``,
``audio_lengths`` / ``vision_lengths`` (unaligned data) and ``classification_labels``.
A / V: MOSEI 74 (COVAREP) / 35 (FACET 4.2); MOSI 5 / 20 (MMSA's config_regression.json,
``feature_dims`` [768, 5, 20]).

Frames are trimmed per clip: audio and vision to their ``*_lengths``; text to the attention
mask of ``text_bert`` (else to its non-zero rows). Aligned data has no lengths: a frame is
kept where any modality is non-zero, the same frames for all three, so they stay aligned.
``text`` features are preferred; when only ``text_bert`` ids exist they are kept out (ids are
not features) and ``raw_text`` is the text to extract from. Audio -inf is set to 0 as MMSA's
loader does (count in ``info["audio_neg_inf_zeroed"]``); other NaN/inf is an error unless
``nonfinite="zero"``. One RawDialogue per video (clips in clip order), speaker = video id.
docs/datasets/mosei.md and docs/datasets/mosi.md describe it for users.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from merbench.data import _cmu as cmu
from merbench.data._common import (
    NONFINITE, check_modalities, choose, finish, load_pickle, pickle_path,
)
from merbench.data.types import RawCorpus, RawDialogue, RawUtterance
from merbench.errors import MerbenchError

FILE_NAMES = ("unaligned_50.pkl", "aligned_50.pkl")
SPLITS = ("train", "valid", "test")
TEXT_DIMS = (768, 300)  # BERT or GloVe


def _array(fmt: str, split: dict, key: str, n: int, dims: tuple[int, ...], path: Path, where: str,
           nonfinite: str) -> tuple[np.ndarray, int]:
    """The (N, T, D) float32 array under ``key``; the number of values set to 0."""
    arr = np.asarray(split[key], dtype=np.float32)
    if arr.ndim != 3 or arr.shape[0] != n or arr.shape[2] not in dims:
        raise MerbenchError(
            f"{fmt}: {path}: {where}.{key} has shape {arr.shape}; expected ({n}, T, "
            f"{' or '.join(map(str, dims))})"
        )
    zeroed = 0
    if key == "audio":  # COVAREP holds -inf (log of 0); MMSA's loader sets it to 0
        neg_inf = arr == -np.inf
        zeroed = int(neg_inf.sum())
        if zeroed:
            arr = np.where(neg_inf, np.float32(0), arr)
    bad = ~np.isfinite(arr)
    if bad.any():
        if nonfinite != "zero":
            record = int(np.argwhere(bad)[0][0])
            raise MerbenchError(
                f"{fmt}: {path}: {where}.{key} record {record} (id {split['id'][record]!r}) "
                f"holds NaN/inf; expected finite features (option nonfinite='zero' sets them to 0)"
            )
        arr = np.where(bad, np.float32(0), arr)
    return arr, zeroed


def _lengths(fmt: str, split: dict, key: str, n: int, t: int, path: Path, where: str) -> np.ndarray:
    lengths = np.asarray(split[key]).reshape(-1)
    if lengths.shape[0] != n:
        raise MerbenchError(f"{fmt}: {path}: {where}.{key} has {lengths.shape[0]} entries; "
                            f"expected {n}")
    # At least one frame, at most the padded length.
    return np.clip(lengths.astype(np.int64), 1, t)


@dataclass(frozen=True)
class MmsaFormat:
    """The MMSA pickles of one corpus: its release facts and the audio / vision sizes checked."""

    release: cmu.Release
    audio_dim: int
    vision_dim: int

    @property
    def format(self) -> str:
        return f"{self.release.name}_mmsa"

    @property
    def description(self) -> str:
        return (f"MMSA pickles unaligned_50.pkl / aligned_50.pkl (text 768/300-d, audio "
                f"{self.audio_dim}-d, vision {self.vision_dim}-d frames)")

    @property
    def dims(self) -> dict[str, tuple[int, ...]]:
        return {"text": TEXT_DIMS, "audio": (self.audio_dim,), "vision": (self.vision_dim,)}

    looks_for = "unaligned_50.pkl or aligned_50.pkl"

    def detect(self, root: Path) -> bool:
        if root.is_file():
            return root.name.lower() in FILE_NAMES
        return any((root / n).is_file() for n in FILE_NAMES)

    def read(self, root: Path, *, labels: str | None = None, protocol: str | None = None,
             fold: int | None = None, modalities: Sequence[str] = (),
             nonfinite: str = "error") -> RawCorpus:
        """Read an MMSA pickle: ``root`` is the file, or a folder holding
        unaligned_50.pkl (preferred) or aligned_50.pkl."""
        fmt = self.format
        labels, protocol = cmu.resolve(fmt, labels, protocol, fold)
        modalities = check_modalities(fmt, modalities)
        choose(fmt, "nonfinite", nonfinite, NONFINITE)
        path = pickle_path(Path(root), FILE_NAMES, fmt)
        data = load_pickle(path, fmt)
        if not isinstance(data, dict) or any(s not in data for s in SPLITS):
            keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
            raise MerbenchError(f"{fmt}: {path} holds {keys}; expected a dict with keys "
                                f"train, valid, test")

        notes: dict[str, object] = {}
        neg_inf = 0
        dialogues: list[RawDialogue] = []
        seen: dict[str, str] = {}
        warnings: list[str] = []
        for split_name in SPLITS:
            split = data[split_name]
            need = ["id", "regression_labels", "audio", "vision"]
            missing = [k for k in need if not isinstance(split, dict) or k not in split]
            if missing:
                raise MerbenchError(f"{fmt}: {path}: {split_name} has no key {missing[0]!r}; "
                                    f"expected keys {', '.join(need)} and text or text_bert")
            ids = [i.decode("utf-8", "replace") if isinstance(i, bytes) else str(i)
                   for i in np.asarray(split["id"]).reshape(-1)]
            n = len(ids)
            if "text" in split:
                text_key = "text"
            elif "text_bert" in split:
                text_key = None
                notes["text_bert"] = "token ids only: kept out of the features; text from raw_text"
            else:
                raise MerbenchError(f"{fmt}: {path}: {split_name} has no key 'text' or 'text_bert'; "
                                    f"expected text features or BERT token ids")
            raw_text = split.get("raw_text")
            if text_key is None and raw_text is None and "text" in modalities:
                raise MerbenchError(f"{fmt}: {path}: {split_name} has neither text features nor "
                                    f"raw_text; text was asked")
            arrays = {}
            for m, key in (("audio", "audio"), ("vision", "vision"), ("text", text_key)):
                if key is not None:
                    arrays[m], zeroed = _array(fmt, split, key, n, self.dims[m], path, split_name, nonfinite)
                    neg_inf += zeroed
            values = np.asarray(split["regression_labels"]).reshape(-1)
            if values.shape[0] != n:
                raise MerbenchError(f"{fmt}: {path}: {split_name}.regression_labels has "
                                    f"{values.shape[0]} entries; expected {n}")
            if "classification_labels" in split:
                notes["classification_labels"] = "present, not used: classes are the ACC-7 bins"

            # Frames kept per clip: (N, T) bool per modality.
            aligned = "audio_lengths" not in split and "vision_lengths" not in split
            keep = {}
            if aligned:
                union = np.zeros(arrays["audio"].shape[:2], dtype=bool)
                for arr in arrays.values():
                    if arr.shape[1] != union.shape[1]:
                        raise MerbenchError(f"{fmt}: {path}: {split_name} has no audio_lengths and "
                                            f"modalities of different lengths; expected aligned data")
                    union |= (arr != 0).any(-1)
                union[~union.any(1), 0] = True  # an all-zero clip keeps one frame
                keep = {m: union for m in arrays}
            else:
                for m in ("audio", "vision"):
                    t = arrays[m].shape[1]
                    lengths = _lengths(fmt, split, f"{m}_lengths", n, t, path, split_name)
                    keep[m] = np.arange(t)[None, :] < lengths[:, None]
                if "text" in arrays:
                    t = arrays["text"].shape[1]
                    if "text_bert" in split:
                        mask = np.asarray(split["text_bert"])
                        if mask.ndim != 3 or mask.shape[0] != n or mask.shape[1] != 3 or mask.shape[2] != t:
                            raise MerbenchError(f"{fmt}: {path}: {split_name}.text_bert has shape "
                                                f"{mask.shape}; expected ({n}, 3, {t})")
                        keep["text"] = mask[:, 1, :] > 0
                    else:
                        keep["text"] = (arrays["text"] != 0).any(-1)
                    keep["text"][~keep["text"].any(1), 0] = True
            notes["aligned"] = aligned

            videos: dict[str, list[tuple[str, int]]] = {}
            for i, clip_id in enumerate(ids):
                if "$_$" not in clip_id:
                    raise MerbenchError(f"{fmt}: {path}: {split_name} record {i} has id {clip_id!r}; "
                                        f"expected 'videoid$_$clipid'")
                video, clip = clip_id.split("$_$", 1)
                videos.setdefault(video, []).append((clip, i))
            for video, clips in videos.items():
                dialogue_id = video
                if video in seen:
                    dialogue_id = f"{video}@{split_name}"
                    warnings.append(f"{fmt}: {path}: video {video!r} is in both {seen[video]} and "
                                    f"{split_name}; its {split_name} clips are dialogue {dialogue_id!r}")
                seen[video] = split_name
                utterances, features = [], {m: [] for m in arrays}
                for clip, i in sorted(clips, key=lambda c: cmu.clip_key(c[0])):
                    where = f"{path}: {split_name} record {i} ({ids[i]})"
                    value, label = cmu.sentiment(values[i], fmt, where)
                    text = None
                    if raw_text is not None:
                        text = str(raw_text[i]).strip()
                        if not text:
                            raise MerbenchError(f"{fmt}: {where} has an empty raw_text; expected a transcript")
                    utterances.append(RawUtterance(ids[i], video, label, value=value, text=text))
                    for m, arr in arrays.items():
                        features[m].append(arr[i][keep[m][i]])  # (T_i, D)
                dialogues.append(RawDialogue(dialogue_id, split_name, utterances, features=features))

        corpus = RawCorpus(self.release.name, "regression", list(cmu.LABEL_SETS[labels]), dialogues,
                           protocol, info={"warnings": warnings})
        return finish(corpus, fmt, self.release.counts, self.release.reference, [path], {
            "labels": labels, "protocol": protocol, "validation": "the file's valid split",
            "audio_neg_inf_zeroed": neg_inf, **notes})


MOSEI = MmsaFormat(cmu.MOSEI, audio_dim=74, vision_dim=35)  # COVAREP, FACET 4.2
MOSI = MmsaFormat(cmu.MOSI, audio_dim=5, vision_dim=20)  # MMSA's reduced COVAREP and FACET
