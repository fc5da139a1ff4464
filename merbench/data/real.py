"""The real datasets as registry entries: read a release (any known format), then features.

``iemocap``, ``mosei``, ``meld`` and ``mosi`` each take the folder or file a researcher has (``root``),
detect its format (or take ``format``), read it under a named label set and protocol, and
turn it into a Corpus with the extractors named in ``features`` (cached) or with the features
the release ships. ``root`` may come from the recipe, ``--set dataset.root=PATH``, or the
environment variable MERBENCH_<DATASET>_ROOT, so committed recipes carry no personal paths.
"""

from __future__ import annotations

from merbench.data.readers import given_root, read_corpus, resolve_root, root_variable  # noqa: F401
from merbench.data.types import Corpus, MODALITIES, modality_hint
from merbench.errors import MerbenchError
from merbench.registry import DATASETS


def load_real(dataset: str, root: str, format: str, labels: str, protocol: str, fold: int,
              features: dict, options: dict, cache: str, extract_device: str, progress: bool = False) -> Corpus:
    # start-up: torch and rich only when this runs
    from merbench.features.build import build_corpus

    for m in features:
        if m not in MODALITIES:
            raise MerbenchError(f"dataset.features.{m}: unknown modality{modality_hint(m)}; valid: {', '.join(MODALITIES)}")
    raw = read_corpus(dataset, resolve_root(dataset, root), format or None, labels or None,
                      protocol or None, fold or None, modalities=tuple(features), **options)
    corpus = build_corpus(raw, features, cache_root=cache or None,
                          device=None if extract_device == "auto" else extract_device, progress=progress)
    if not corpus.modalities:
        raise MerbenchError(f"dataset {dataset}: no features: the {raw.info.get('format', 'release')} "
                            f"format ships none, so name extractors in dataset.features (e.g. text: minilm)")
    return corpus


def iemocap(root: str = "", format: str = "", labels: str = "iemocap6", protocol: str = "session5-test",
            fold: int = 0, features: dict = {}, options: dict = {}, cache: str = "",  # noqa: B006
            extract_device: str = "auto") -> Corpus:
    """IEMOCAP (raw release, COSMIC pickle or DialogueRNN features); iemocap6 / iemocap4; session5-test / loso."""
    return load_real("iemocap", root, format, labels, protocol, fold, features, options, cache, extract_device)


def mosei(root: str = "", format: str = "", labels: str = "", protocol: str = "", fold: int = 0,
          features: dict = {}, options: dict = {}, cache: str = "",  # noqa: B006
          extract_device: str = "auto") -> Corpus:
    """CMU-MOSEI (MMSA pickles or SDK .csd files), sentiment regression in [-3, 3]."""
    return load_real("mosei", root, format, labels, protocol, fold, features, options, cache, extract_device)


def meld(root: str = "", format: str = "", labels: str = "meld7", protocol: str = "", fold: int = 0,
         features: dict = {}, options: dict = {}, cache: str = "",  # noqa: B006
         extract_device: str = "auto") -> Corpus:
    """MELD (raw CSVs + clips, or DialogueRNN features); meld7 emotions / meld3 sentiment."""
    return load_real("meld", root, format, labels, protocol, fold, features, options, cache, extract_device)


def mosi(root: str = "", format: str = "", labels: str = "", protocol: str = "", fold: int = 0,
         features: dict = {}, options: dict = {}, cache: str = "",  # noqa: B006
         extract_device: str = "auto") -> Corpus:
    """CMU-MOSI: bc-LSTM release (binary classification) or MMSA pickles / SDK .csd files (regression in [-3, 3])."""
    return load_real("mosi", root, format, labels, protocol, fold, features, options, cache, extract_device)


# The task is the corpus's (Corpus.task): results files, tables and metrics read it from there.
# MOSI's depends on the format, so its meta gives both (shown by `merbench datasets`).
DATASETS.register("iemocap", iemocap, task="classification", layout="iemocap")
DATASETS.register("mosei", mosei, task="regression", layout="mosei")
DATASETS.register("meld", meld, task="classification", layout="iemocap")
DATASETS.register("mosi", mosi, task="classification | regression", layout="iemocap | mosei")
