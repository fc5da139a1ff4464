"""Plumbing shared by the extractors: the Extractor base class, devices, local model dirs.

Model weights are never downloaded: every model comes from a local directory saved with
``save_pretrained``, checked here before any work so a bad path is a one-line error.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from merbench.data.types import RawDialogue, RawUtterance
from merbench.errors import MerbenchError
from merbench.optional import import_optional

# transformers and huggingface_hub read these at import: no network, ever.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")
# Files of a model dir above this size are identified by size + first and last MiB, not hashed
# whole: a retrained or fine-tuned checkpoint differs there too, and hashing a 1 GB file on
# every `merbench extract` would make a fully cached run slow.
WHOLE_HASH_LIMIT = 16 << 20
EDGE = 1 << 20

Progress = Callable[[int], None]


class Extractor:
    """One feature extractor: ``extract(utterances)`` -> per utterance ``(D,)`` or ``(T, D)``.

    Subclasses set ``name``, ``modality`` and ``sequence`` (True: per utterance a frame sequence
    ``(T, D)``), list in ``config()`` everything that changes their output (the cache key), and
    load any model in ``load()`` (called by the cache before the first missing shard, and by
    ``extract`` if not yet done) so a fully cached run loads nothing.
    """

    name = ""
    modality = ""
    sequence = False
    batch_size = 16

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def load(self) -> Any:
        """Load the model (once); extraction speed is then measured without it."""

    def bind(self, dialogues: Sequence[RawDialogue]) -> None:
        """See the corpus before extraction (a text encoder with context reads each
        utterance's dialogue); most extractors need only the utterance."""

    def extract(self, utterances: Sequence[RawUtterance],
                progress: Progress | None = None) -> list[np.ndarray]:
        raise NotImplementedError


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (read from metadata: importing transformers is slow)."""
    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def check_model_dir(path: str | Path | None, option: str,
                    model_types: tuple[str, ...] | None = None) -> Path:
    """A local dir saved with ``save_pretrained``, else a one-line MerbenchError naming ``option``."""
    tail = "pass a local directory saved with save_pretrained (models are never downloaded)"
    if path in (None, ""):
        raise MerbenchError(f"{option} PATH is required; {tail}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise MerbenchError(f"{option} {path}: no such directory; {tail}")
    config_file = root / "config.json"
    if not config_file.is_file():
        raise MerbenchError(f"{option} {path}: no config.json in {path}; {tail}")
    if not any((root / w).is_file() for w in WEIGHT_FILES):
        raise MerbenchError(f"{option} {path}: no weights ({' or '.join(WEIGHT_FILES[:2])}) "
                            f"in {path}; {tail}")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise MerbenchError(f"{option} {path}: config.json is not a JSON object ({err})") from None
    if model_types is not None and model_type not in model_types:
        raise MerbenchError(f"{option} {path}: model_type {model_type!r} in config.json; "
                            f"expected one of {', '.join(model_types)}")
    return root.resolve()


def model_config(root: Path) -> dict[str, Any]:
    return json.loads((root / "config.json").read_text())


def model_dir_hash(root: Path) -> str:
    """sha256 identifying a model dir's content: configs, tokenizer / preprocessor files, weights."""
    h = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if rel.startswith(".") or "/." in rel or file.suffix == ".md":
            continue  # README / .gitattributes do not change the output
        size = file.stat().st_size
        h.update(f"{rel}|{size}|".encode())
        with open(file, "rb") as f:
            if size <= WHOLE_HASH_LIMIT:
                h.update(f.read())
            else:
                h.update(f.read(EDGE))
                f.seek(size - EDGE)
                h.update(f.read(EDGE))
    return h.hexdigest()


def load_pretrained(kind: str, root: Path) -> Any:
    """``Auto<kind>.from_pretrained(root)`` offline (kind: Model, Tokenizer, FeatureExtractor)."""
    transformers = import_optional("transformers", f"loading a pretrained {kind.lower()}")
    transformers.utils.logging.disable_progress_bar()  # merbench's own bar shows progress
    loader = getattr(transformers, f"Auto{kind}")
    try:
        return loader.from_pretrained(str(root), local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MerbenchError(f"{root}: transformers could not load a {kind.lower()} "
                            f"from it ({first})") from None


def length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices in batches of similar length (longest first), so padding stays small."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def require(utterance: RawUtterance, attribute: str, extractor: str) -> Any:
    value = getattr(utterance, attribute)
    if value is None:
        raise MerbenchError(f"utterance {utterance.id}: no {attribute}; extractor {extractor!r} "
                            f"needs one for every utterance")
    return value
