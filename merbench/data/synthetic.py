"""The built-in synthetic corpus: seeded, generated in seconds, shaped like IEMOCAP.

How an utterance is made (docs/synthetic.md says the same for users):
1. Labels follow a per-dialogue Markov chain: with probability ``context`` an utterance
   repeats the label of the previous utterance, otherwise it is drawn from IEMOCAP's class
   frequencies. Earlier utterances therefore carry part of the label.
2. Each class has a latent prototype. Modality m sees ``strength[m] * prototype + noise``,
   pushed through its own fixed random projection to ``dims[m]``. Text is the strongest
   modality (it also carries a weak hint of the pair member), audio and vision weaker, so
   fusion beats the best single modality.
3. Interaction: the classes come in pairs (happy/excited, angry/frustrated, sad/neutral).
   Which member of a pair an utterance is, is coded as the product of two random signs, one
   placed in audio and one in vision: neither modality alone tells the pair member apart,
   their interaction does.
4. Quality varies per utterance: each modality's noise scale is drawn per utterance, and
   with probability ``corrupt`` a modality is replaced by pure noise, so a model that
   weights modalities per utterance has something to find.
5. A real-valued sentiment in [-3, 3] per utterance (from the class's valence plus noise)
   makes the same corpus usable for regression metrics (ACC-2, ACC-7, MAE, Corr).
With ``frames`` a modality is a sequence of noisy frames around its utterance vector, of
random length, for models that take frame sequences.
"""

from __future__ import annotations

import inspect

import numpy as np

from merbench.data.types import Corpus, Dialogue, MODALITIES
from merbench.errors import MerbenchError
from merbench.ranges import NON_NEGATIVE, PROBABILITY
from merbench.registry import DATASETS

IEMOCAP6 = ["happy", "sad", "neutral", "angry", "excited", "frustrated"]
# Shared IEMOCAP pickle's class counts (648, 1084, 1708, 1103, 1041, 1849), as frequencies.
CLASS_FREQ = np.array([648, 1084, 1708, 1103, 1041, 1849], dtype=float) / 7433
VALENCE = np.array([2.0, -2.0, 0.0, -2.5, 2.5, -1.5])
# Pairs told apart only by the audio x vision interaction: (happy, excited), (sad, neutral),
# (angry, frustrated); PAIR_OF[c] is the pair index, MEMBER[c] the member bit.
PAIR_OF = np.array([0, 1, 1, 2, 0, 2])
MEMBER = np.array([0, 0, 1, 0, 1, 1])
STRENGTH = {"text": 0.5, "audio": 0.5, "vision": 0.4}
LATENT = 16


def _lengths(rng: np.random.Generator, n_dialogues: int, n_utterances: int) -> np.ndarray:
    """Dialogue lengths that sum to exactly ``n_utterances``, each at least 2."""
    weights = rng.uniform(0.5, 1.5, n_dialogues)
    lengths = np.maximum(2, np.floor(weights / weights.sum() * n_utterances)).astype(int)
    i = 0
    while lengths.sum() != n_utterances:
        step = 1 if lengths.sum() < n_utterances else -1
        if step > 0 or lengths[i % n_dialogues] > 2:
            lengths[i % n_dialogues] += step
        i += 1
    return lengths


def synthetic(
    n_dialogues: int = 60,
    n_utterances: int = 900,
    audio_dim: int = 32,
    text_dim: int = 64,
    vision_dim: int = 48,
    frames: bool = False,
    min_frames: int = 4,
    max_frames: int = 12,
    context: float = 0.5,
    corrupt: float = 0.1,
    noise: float = 1.0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Corpus:
    """Built-in seeded IEMOCAP-shaped corpus with context, cross-modal interaction and corruption.

    How it is generated: the module docstring and docs/synthetic.md.
    """
    if n_dialogues < 3 or n_utterances < 2 * n_dialogues:
        raise MerbenchError(
            f"dataset synthetic: need n_dialogues >= 3 and n_utterances >= 2 * n_dialogues, "
            f"got {n_dialogues} and {n_utterances}"
        )
    if not 0 <= context < 1 or not 0 <= corrupt < 1:
        raise MerbenchError("dataset synthetic: context and corrupt must lie in [0, 1)")
    dims = {"audio": audio_dim, "text": text_dim, "vision": vision_dim}
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(len(IEMOCAP6), LATENT))
    projections = {m: rng.normal(size=(LATENT + 2, dims[m])) / np.sqrt(LATENT) for m in MODALITIES}
    sign_vectors = {m: rng.normal(size=LATENT + 2) for m in ("audio", "vision")}
    lengths = _lengths(rng, n_dialogues, n_utterances)
    order = rng.permutation(n_dialogues)
    n_test = max(1, int(round(test_fraction * n_dialogues)))
    n_valid = max(1, int(round(valid_fraction * n_dialogues)))
    split_of = {int(i): "test" for i in order[:n_test]}
    split_of.update({int(i): "valid" for i in order[n_test : n_test + n_valid]})

    dialogues = []
    for d, length in enumerate(lengths):
        labels = np.empty(length, dtype=np.int64)
        for t in range(length):
            if t > 0 and rng.random() < context:
                labels[t] = labels[t - 1]
            else:
                labels[t] = rng.choice(len(IEMOCAP6), p=CLASS_FREQ)
        speakers = (np.arange(length) + rng.integers(2)) % 2
        values = np.clip(VALENCE[labels] + rng.normal(0, 0.7, length), -3, 3).astype(np.float32)
        # The pair member bit = sign_audio * sign_vision (both +-1): an XOR across modalities.
        sign_audio = rng.choice([-1.0, 1.0], size=length)
        sign_vision = sign_audio * np.where(MEMBER[labels] == 1, 1.0, -1.0)
        features: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
        corrupted = {m: np.zeros(length, dtype=bool) for m in MODALITIES}
        for t in range(length):
            # Pair members share a prototype; the member is only in the interaction.
            pair_proto = prototypes[[c for c in range(6) if PAIR_OF[c] == PAIR_OF[labels[t]]][0]]
            for m in MODALITIES:
                latent = np.concatenate([STRENGTH[m] * pair_proto, np.zeros(2)])
                if m == "text":  # text alone carries a weaker hint of the member too
                    latent[:LATENT] += 0.35 * (prototypes[labels[t]] - pair_proto)
                if m in sign_vectors:
                    sign = sign_audio[t] if m == "audio" else sign_vision[t]
                    latent = latent + 0.8 * sign * sign_vectors[m] / np.linalg.norm(sign_vectors[m]) * 2
                scale = noise * rng.uniform(0.5, 1.5)
                if rng.random() < corrupt:
                    latent = rng.normal(0, 2.0, LATENT + 2)
                    corrupted[m][t] = True
                x = (latent + rng.normal(0, scale, LATENT + 2)) @ projections[m]
                if frames:
                    n_frames = int(rng.integers(min_frames, max_frames + 1))
                    x = x[None, :] + rng.normal(0, 0.5 * noise, (n_frames, dims[m]))
                features[m].append(x.astype(np.float32))
        dialogues.append(Dialogue(
            id=f"syn{d:04d}", split=split_of.get(d, "train"), speakers=speakers.astype(np.int64),
            labels=labels, values=values, features=features,
            utterance_ids=[f"syn{d:04d}_{t:03d}" for t in range(length)],
            session=f"S{d % 5 + 1}", corrupted=corrupted,
        ))
    corpus = Corpus("synthetic", "classification", list(IEMOCAP6), dialogues, protocol="random-dialogues",
                    info={"generator": "merbench.data.synthetic", "seed": seed})
    corpus.info["counts"] = corpus.counts()
    return corpus


def synthetic_regression(**kwargs) -> Corpus:
    """The same corpus scored as MOSEI-style sentiment regression (ACC-2, ACC-7, MAE, Corr).

    ``labels`` keep the ACC-7 bin (round of the clipped value, shifted to 0..6) so that
    models with label-aware losses (contrastive) still have classes.
    """
    corpus = synthetic(**kwargs)
    for d in corpus.dialogues:
        d.labels = (np.round(np.clip(d.values, -3, 3)) + 3).astype(np.int64)
    corpus.name, corpus.task = "synthetic_mosei", "regression"
    corpus.label_names = [str(v) for v in range(-3, 4)]
    return corpus


# Same arguments as ``synthetic``: recipe validation reads them from the signature.
synthetic_regression.__signature__ = inspect.signature(synthetic)  # type: ignore[attr-defined]

# Ranges the naming convention (merbench.ranges) cannot tell: two probabilities and a scale.
synthetic.arg_ranges = synthetic_regression.arg_ranges = {  # type: ignore[attr-defined]
    "context": PROBABILITY, "corrupt": PROBABILITY, "noise": NON_NEGATIVE}

DATASETS.register("synthetic", synthetic, task="classification", layout="iemocap")
DATASETS.register("synthetic_mosei", synthetic_regression, task="regression", layout="mosei")
