"""Plumbing shared by the extractors: the Extractor base class, devices, model dirs and hub ids.

A model is a local directory saved with ``save_pretrained`` (never reaching the network), or
a hub id ``org/name[@revision]`` resolved by huggingface_hub in HuggingFace's own cache
(HF_HOME; ``HF_HUB_OFFLINE=1``: the cache alone). Either is checked here before any work, so
a bad path or a model missing offline is a one-line error. A hub model is identified by the
commit its revision resolved to (the snapshot folder's name), which goes into the cache key.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from merbench.data.types import RawDialogue, RawUtterance
from merbench.errors import MerbenchError
from merbench.optional import import_optional

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

    def take_counts(self) -> dict[str, int]:
        """What the extractor counted since the last call (the face step: frames without a
        face), then reset; the cache keeps it per shard and sums it in the manifest."""
        return {}


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (read from metadata: importing transformers is slow)."""
    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


# A hub id: ``org/name`` with an optional ``@revision`` (branch, tag or commit hash).
HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w./-]+))?$")
# What resolving a hub id fetches before any work: configs, tokenizer and preprocessor files
# (the weights come when the model is loaded, so a fully cached extraction fetches none).
HUB_SMALL_FILES = ["*.json", "*.txt", "*.model", "*.tiktoken"]
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def hub_snapshot(root: Path) -> tuple[str, str, Path] | None:
    """``(repo id, commit, hub cache dir)`` when ``root`` is a snapshot folder of HuggingFace's
    cache (``<cache>/models--org--name/snapshots/<commit>``), else None."""
    repo_dir = root.parent.parent
    if root.parent.name != "snapshots" or not repo_dir.name.startswith("models--") or not COMMIT.match(root.name):
        return None
    return repo_dir.name[len("models--"):].replace("--", "/"), root.name, repo_dir.parent


def resolve_hub_id(spec: str, option: str) -> Path:
    """The snapshot folder of hub id ``org/name[@revision]`` with its small files, fetched into
    HuggingFace's cache unless ``HF_HUB_OFFLINE=1`` (then the cache alone); one-line errors."""
    hub = import_optional("huggingface_hub", f"{option} {spec} (a hub id)")
    match = HUB_ID.match(spec)
    assert match is not None
    repo, revision = match["repo"], match["revision"]
    offline = hub.constants.HF_HUB_OFFLINE
    where = f"{option} {spec}"
    try:
        folder = Path(hub.snapshot_download(repo, revision=revision, allow_patterns=HUB_SMALL_FILES))
    except hub.errors.LocalEntryNotFoundError:
        at = f" at revision {revision}" if revision else ""
        if offline:
            raise MerbenchError(f"{where}: no such directory, and {repo}{at} is not in the HuggingFace cache "
                                f"({hub.constants.HF_HUB_CACHE}) while HF_HUB_OFFLINE=1; fetch it once on a "
                                f"connected machine (hf download {repo}{f' --revision {revision}' if revision else ''}) "
                                f"or pass a local directory saved with save_pretrained") from None
        raise MerbenchError(f"{where}: no such directory, and the hub could not be reached for {repo}{at}, "
                            f"which is not in the HuggingFace cache; connect, or pass a local directory") from None
    except hub.errors.RevisionNotFoundError:
        raise MerbenchError(f"{where}: the hub has no revision {revision!r} of {repo}") from None
    except hub.errors.RepositoryNotFoundError:
        raise MerbenchError(f"{where}: no such directory, and no model {repo} on the hub (or it is "
                            f"private: log in with hf auth login)") from None
    except (hub.errors.HfHubHTTPError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MerbenchError(f"{where}: could not fetch it from the hub ({first})") from None
    if offline and not any(hub.try_to_load_from_cache(repo, w, revision=folder.name) for w in WEIGHT_FILES):
        raise MerbenchError(f"{where}: the weights of {repo}@{folder.name[:12]} are not in the HuggingFace "
                            f"cache while HF_HUB_OFFLINE=1; fetch them once on a connected machine "
                            f"(hf download {repo} --revision {folder.name})")
    return folder


def check_model_dir(path: str | Path | None, option: str,
                    model_types: tuple[str, ...] | None = None) -> Path:
    """A local dir saved with ``save_pretrained``, or the snapshot folder of a hub id
    ``org/name[@revision]``; else a one-line MerbenchError naming ``option``."""
    tail = "pass a local directory saved with save_pretrained or a hub id org/name[@revision]"
    if path in (None, ""):
        raise MerbenchError(f"{option} PATH is required; {tail}")
    root = Path(path).expanduser()
    hub = False
    if not root.exists() and HUB_ID.match(str(path)):
        root, hub = resolve_hub_id(str(path), option), True
    if not root.is_dir():
        raise MerbenchError(f"{option} {path}: no such directory; {tail}")
    config_file = root / "config.json"
    if not config_file.is_file():
        raise MerbenchError(f"{option} {path}: no config.json in {root}; {tail}")
    if not hub and not any((root / w).is_file() for w in WEIGHT_FILES):
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
    """sha256 identifying a model dir's content: configs, tokenizer / preprocessor files, weights;
    for a hub snapshot, ``hub:org/name@<commit>`` (the commit fixes every file of the repo)."""
    snapshot = hub_snapshot(root)
    if snapshot is not None:
        return f"hub:{snapshot[0]}@{snapshot[1]}"
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
    snapshot = hub_snapshot(root)
    try:
        if snapshot is not None:  # the weights come now, into HuggingFace's cache (unless offline)
            from huggingface_hub import constants

            repo, commit, cache_dir = snapshot
            return loader.from_pretrained(repo, revision=commit, cache_dir=str(cache_dir),
                                          local_files_only=constants.HF_HUB_OFFLINE)
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
