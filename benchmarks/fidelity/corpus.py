"""A MOSEI-shaped synthetic corpus in MMSA's pickle layout (src/MMSA/data_loader.py).

One dict per split with ``id`` ("video$_$clip"), ``raw_text``, ``regression_labels`` in
[-3, 3] (multiples of 1/3, as averaged MOSEI ratings), ``text`` (N, T, 300: the GloVe width
MMSA's MOSEI pickles also come in), ``audio`` (N, T, 74: COVAREP), ``vision`` (N, T, 35:
Facet) and ``audio_lengths`` / ``vision_lengths``. Every clip has all T frames in every
modality (word-aligned, no padding), so MMSA's models and merbench's read the same numbers
whether they average over padded or valid frames, and the aligned and unaligned loaders agree.

Each clip has a latent sentiment factor; every modality sees it through its own random map,
under its own noise, spread over the frames, and the label is a saturating function of it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

DIMS = {"text": 300, "audio": 74, "vision": 35}
# Per-modality noise on each frame: text is the clearest view, vision the noisiest (as in MOSEI).
NOISE = {"text": 1.0, "audio": 2.0, "vision": 3.0}
LATENT = 6


def make_split(rng: np.random.Generator, maps: dict, weights: np.ndarray, n: int, frames: int,
               clips_per_video: int, name: str) -> dict:
    z = rng.standard_normal((n, LATENT)).astype(np.float32)  # (N, K)
    score = np.tanh(z @ weights / np.sqrt(LATENT) * 1.5) * 3 + rng.normal(0, 0.4, n)
    labels = np.clip(np.round(score * 3) / 3, -3, 3).astype(np.float32)  # (N,)
    split = {
        "id": np.array([f"{name}v{i // clips_per_video}$_${i % clips_per_video}" for i in range(n)]),
        "raw_text": np.array([f"clip {i} of {name}" for i in range(n)]),
        "regression_labels": labels,
        "audio_lengths": np.full(n, frames, dtype=np.int64),
        "vision_lengths": np.full(n, frames, dtype=np.int64),
    }
    for m, d in DIMS.items():
        signal = (z @ maps[m])[:, None, :]  # (N, 1, D)
        # Frame-level variation: the signal fades in and out over the clip.
        envelope = 0.5 + rng.random((n, frames, 1))  # (N, T, 1)
        split[m] = (signal * envelope + rng.normal(0, NOISE[m], (n, frames, d))).astype(np.float32)
    return split


def write_corpus(path: Path, *, n_train: int, n_valid: int, n_test: int, frames: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    maps = {m: rng.standard_normal((LATENT, d)).astype(np.float32) for m, d in DIMS.items()}
    weights = rng.standard_normal(LATENT).astype(np.float32)
    data = {name: make_split(rng, maps, weights, n, frames, 8, name)
            for name, n in (("train", n_train), ("valid", n_valid), ("test", n_test))}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path
