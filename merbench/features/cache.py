"""The feature cache: one folder per (dataset fingerprint, extractor config), stored in shards.

Layout under the cache root (``--cache``, else ``$MERBENCH_CACHE``, else ``./.merbench-cache``)::

    <dataset>-<fingerprint[:16]>/<modality>-<extractor>-<config hash[:16]>/
        shard-<size>-00000.npy           (n, D) vectors, or (sum T, D) frames of n utterances
        shard-<size>-00000.offsets.npy   frames only: (n + 1,) row offsets into the shard
        ...
        manifest.json                    written last: the folder is complete when it exists

Every file is written to a temporary name and moved into place with ``os.replace``, so a killed
extract leaves only whole shards, and the next run starts at the first missing one. The config
holds everything that changes the output (model dir hash, options, library versions): a
changed config is a new folder, never a stale reuse. A complete folder is read memory-mapped
and no model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from merbench.atomic import atomic_open
from merbench.data.types import RawUtterance
from merbench.features._common import Extractor

SHARD_SIZE = 256
MANIFEST = "manifest.json"
SCHEMA = 1


@dataclass
class FeatureSet:
    """Per utterance ``(D,)`` or ``(T, D)`` float32 (read-only memory maps), and the manifest."""

    features: list[np.ndarray]
    manifest: dict[str, Any]


def cache_root(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get("MERBENCH_CACHE") or Path.cwd() / ".merbench-cache")


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def feature_dir(root: str | Path | None, dataset: str, fingerprint: str, extractor: Extractor) -> Path:
    key = config_hash(extractor.config())
    return (cache_root(root) / f"{dataset}-{fingerprint[:16]}"
            / f"{extractor.modality}-{extractor.name}-{key[:16]}")


def extract_cached(extractor: Extractor, utterances: Sequence[RawUtterance], *, dataset: str,
                   fingerprint: str, root: str | Path | None = None, shard_size: int = SHARD_SIZE,
                   progress: bool = True) -> FeatureSet:
    """Features of ``utterances`` (all of the dataset, in order) from the cache, extracting the
    shards that are missing. ``fingerprint`` is ``RawCorpus.fingerprint()`` of that dataset."""
    config = extractor.config()
    directory = feature_dir(root, dataset, fingerprint, extractor)
    expected = {"fingerprint": fingerprint, "config_hash": config_hash(config), "count": len(utterances)}
    cached = load_features(directory, expected)
    if cached is not None:
        return cached
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).unlink(missing_ok=True)  # stale or foreign: rebuilt below
    shards = list(_shard_ranges(len(utterances), shard_size))
    extracted = 0
    missing = [k for k, (lo, hi) in enumerate(shards)
               if not _shard_complete(directory, shard_size, k, hi - lo, extractor.sequence)]
    done = len(utterances) - sum(shards[k][1] - shards[k][0] for k in missing)
    if missing:
        extractor.load()
    started = time.perf_counter()  # extraction speed, the model load left out
    with _progress_bar(progress) as bar:
        task = bar.add_task(f"{extractor.modality} {extractor.name}", total=len(utterances),
                            completed=done)
        for k in missing:
            lo, hi = shards[k]
            feats = extractor.extract(utterances[lo:hi], progress=lambda n: bar.advance(task, n))
            _write_shard(directory, shard_size, k, feats, extractor.sequence)
            extracted += hi - lo
    seconds = time.perf_counter() - started
    first = np.load(_shard_path(directory, shard_size, 0), mmap_mode="r") if shards else None
    manifest = {
        "schema": SCHEMA, "dataset": dataset, **expected, "modality": extractor.modality,
        "extractor": extractor.name, "config": config, "sequence": extractor.sequence,
        "dim": int(first.shape[-1]) if first is not None else 0, "shard_size": shard_size,
        "shards": len(shards), "versions": config.get("versions", {}),
        "python": platform.python_version(), "created": datetime.now(timezone.utc).isoformat(),
        "extracted": extracted, "extract_seconds": round(seconds, 3),
        "utterances_per_second": round(extracted / seconds, 2) if extracted and seconds > 0 else None,
    }
    _remove_other_shards(directory, shard_size, len(shards))
    _atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    loaded = load_features(directory, expected)
    assert loaded is not None, f"{directory}: just written but unreadable"
    return loaded


def load_features(directory: Path, expected: dict[str, Any] | None = None) -> FeatureSet | None:
    """A complete folder's features memory-mapped, or None when it is absent, partial or stale."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if manifest.get("schema") != SCHEMA:
        return None
    if expected and any(manifest.get(k) != v for k, v in expected.items()):
        return None
    features: list[np.ndarray] = []
    size, count = manifest["shard_size"], manifest["count"]
    for k, (lo, hi) in enumerate(_shard_ranges(count, size)):
        data = np.load(_shard_path(directory, size, k), mmap_mode="r")
        if manifest["sequence"]:
            offsets = np.load(_offsets_path(directory, size, k))
            features.extend(data[offsets[i]:offsets[i + 1]] for i in range(hi - lo))
        else:
            features.extend(data[i] for i in range(hi - lo))
    return FeatureSet(features, manifest)


def _shard_ranges(count: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, count, size):
        yield lo, min(count, lo + size)


def _shard_path(directory: Path, size: int, k: int) -> Path:
    return directory / f"shard-{size}-{k:05d}.npy"


def _offsets_path(directory: Path, size: int, k: int) -> Path:
    return directory / f"shard-{size}-{k:05d}.offsets.npy"


def _shard_complete(directory: Path, size: int, k: int, count: int, sequence: bool) -> bool:
    """A shard whose files exist and hold ``count`` utterances (the data file is written last)."""
    try:
        data = np.load(_shard_path(directory, size, k), mmap_mode="r")
        if sequence:
            offsets = np.load(_offsets_path(directory, size, k))
            return data.ndim == 2 and len(offsets) == count + 1 and offsets[-1] == len(data)
        return data.ndim == 2 and len(data) == count
    except (FileNotFoundError, ValueError, OSError):
        return False


def _write_shard(directory: Path, size: int, k: int, feats: list[np.ndarray], sequence: bool) -> None:
    arrays = [np.asarray(x, dtype=np.float32) for x in feats]
    if sequence:
        lengths = [len(x) for x in arrays]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)  # (n + 1,)
        _atomic_save(_offsets_path(directory, size, k), offsets)
        data = np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)  # (sum T, D)
    else:
        data = np.stack(arrays)  # (n, D)
    _atomic_save(_shard_path(directory, size, k), data)


def _remove_other_shards(directory: Path, size: int, shards: int) -> None:
    """Shards left by a run with another shard size would never be read again."""
    keep = {_shard_path(directory, size, k).name for k in range(shards)}
    keep |= {_offsets_path(directory, size, k).name for k in range(shards)}
    for path in directory.glob("shard-*.npy"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def _atomic_save(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, array)


def _atomic_write(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


class _SpeedColumn(ProgressColumn):
    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} utt/s" if speed else "- utt/s", style="progress.data.speed")


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        _SpeedColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), disable=not enabled,
    )
