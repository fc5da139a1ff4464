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

The cache verifies what it serves: the manifest records per shard its file, utterances, shape,
dtype and sha256 (and its offsets file's), and every read checks them. A shard that differs
(truncated, rewritten with other rows, deleted) or a manifest that is malformed or contradicts
its shards (a flipped ``sequence`` flag, ``shard_size`` 0) is never served: ``extract_cached``
says so in one warning line and extracts the bad shards again; ``load_features`` stops with
one line naming the file. One process extracts into a folder at a time (``merbench.lock``);
another that needs the same features waits for it, then reads them.
"""

from __future__ import annotations

import hashlib
import json
import logging
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

from merbench import lock
from merbench.atomic import atomic_open, remove_temporaries
from merbench.data.types import RawUtterance
from merbench.errors import MerbenchError
from merbench.features._common import Extractor

SHARD_SIZE = 256
MANIFEST = "manifest.json"
SCHEMA = 2  # 2: per-shard records (file, utterances, shape, dtype, sha256)

log = logging.getLogger("merbench")


class CacheError(MerbenchError):
    """A cache folder whose files do not match its manifest: never served."""


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
    return features_folder(root, dataset, fingerprint, extractor.modality, extractor.name,
                           config_hash(extractor.config()))


def features_folder(root: str | Path | None, dataset: str, fingerprint: str, modality: str, name: str,
                    key: str) -> Path:
    """The cache folder of one extraction (its ``manifest.json`` and shards): the dataset and
    its raw fingerprint, then the modality, the extractor and its config hash ``key``."""
    return cache_root(root) / f"{dataset}-{fingerprint[:16]}" / f"{modality}-{name}-{key[:16]}"


def extract_cached(extractor: Extractor, utterances: Sequence[RawUtterance], *, dataset: str,
                   fingerprint: str, root: str | Path | None = None, shard_size: int = SHARD_SIZE,
                   progress: bool = True) -> FeatureSet:
    """Features of ``utterances`` (all of the dataset, in order) from the cache, extracting the
    shards that are missing. ``fingerprint`` is ``RawCorpus.fingerprint()`` of that dataset."""
    config = extractor.config()
    directory = feature_dir(root, dataset, fingerprint, extractor)
    expected = {"fingerprint": fingerprint, "config_hash": config_hash(config), "count": len(utterances),
                "sequence": extractor.sequence}
    cached = _served(directory, expected)
    if cached is not None:
        return cached

    def waiting(holder: lock.Holder | None) -> None:
        log.warning("waiting for %s, which is extracting into %s", holder.describe() if holder else
                    "another process", directory)

    with lock.hold(directory, wait=True, on_wait=waiting):
        cached = _served(directory, expected, quiet=True)  # a process we waited for may have written it
        if cached is None:
            _extract(extractor, utterances, directory, dataset, expected, config, shard_size, progress)
    loaded = load_features(directory, expected)
    if loaded is None:
        raise CacheError(f"{directory / MANIFEST}: just written, but does not match this extraction")
    return loaded


def _served(directory: Path, expected: dict[str, Any], quiet: bool = False) -> FeatureSet | None:
    """The folder's features when they verify; None (and one warning line) when not."""
    try:
        return load_features(directory, expected)
    except CacheError as e:
        if not quiet:
            log.warning("warning: %s; extracting the bad part again", e)
        return None


def _extract(extractor: Extractor, utterances: Sequence[RawUtterance], directory: Path, dataset: str,
             expected: dict[str, Any], config: dict[str, Any], shard_size: int, progress: bool) -> None:
    """Extract the shards that are missing or differ from the old manifest's records; write the
    manifest last. Called holding the folder's lock."""
    directory.mkdir(parents=True, exist_ok=True)
    remove_temporaries(directory)
    _drop_differing_shards(directory)
    (directory / MANIFEST).unlink(missing_ok=True)  # stale, foreign or bad: rebuilt below
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
            extractor.take_counts()  # counts belong to the shard they were made for
            feats = extractor.extract(utterances[lo:hi], progress=lambda n: bar.advance(task, n))
            counts = extractor.take_counts()
            if counts:  # written before the shard, so a whole shard always has its counts
                _atomic_write(_counts_path(directory, shard_size, k), json.dumps(counts).encode())
            _write_shard(directory, shard_size, k, feats, extractor.sequence)
            extracted += hi - lo
    seconds = time.perf_counter() - started
    records = [_record(directory, shard_size, k, hi - lo, extractor.sequence) for k, (lo, hi) in enumerate(shards)]
    manifest = {
        "schema": SCHEMA, "dataset": dataset, **expected, "modality": extractor.modality,
        "extractor": extractor.name, "config": config,
        "dim": records[0]["shape"][-1] if records else 0, "shard_size": shard_size,
        "shards": records, "versions": config.get("versions", {}),
        "python": platform.python_version(), "created": datetime.now(timezone.utc).isoformat(),
        "extracted": extracted, "extract_seconds": round(seconds, 3),
        "utterances_per_second": round(extracted / seconds, 2) if extracted and seconds > 0 else None,
    }
    counts = _shard_counts(directory, shard_size, len(shards))
    if counts:
        manifest["counts"] = counts
    _remove_other_shards(directory, shard_size, len(shards))
    _atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())


def load_features(directory: Path, expected: dict[str, Any] | None = None) -> FeatureSet | None:
    """A complete folder's features memory-mapped, every shard verified against the manifest.

    None when the folder has no manifest (absent or partial) or was written for other data,
    another config or an older schema; ``CacheError`` naming the file when a file is bad.
    """
    manifest = _read_manifest(directory)
    if manifest is None or (expected and any(manifest.get(k) != v for k, v in expected.items())):
        return None
    features: list[np.ndarray] = []
    for record in manifest["shards"]:
        n = record["utterances"]
        data = _verified(directory / record["file"], record)  # (rows, D)
        if manifest["sequence"]:
            offsets = np.asarray(_verified(directory / record["offsets"]["file"], record["offsets"]))  # (n + 1,)
            if (len(offsets) != n + 1 or offsets[0] != 0 or offsets[-1] != len(data)
                    or np.any(np.diff(offsets) < 0)):
                raise CacheError(f"{directory / record['offsets']['file']}: offsets do not cut its shard "
                                 f"into {n} utterances")
            features.extend(data[offsets[i]:offsets[i + 1]] for i in range(n))
        else:
            if len(data) != n:
                raise CacheError(f"{directory / record['file']}: {len(data)} rows for {n} utterances")
            features.extend(data[i] for i in range(n))
    return FeatureSet(features, manifest)


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest, checked for kind and for agreement with itself; None when absent or of an
    older schema (rebuilt, its shards reused when whole)."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CacheError(f"{path}: not a readable JSON manifest ({type(e).__name__})") from None
    if not isinstance(manifest, dict):
        raise CacheError(f"{path}: expected a JSON object, got a {type(manifest).__name__}")
    if manifest.get("schema") != SCHEMA:
        return None
    size, count, sequence = manifest.get("shard_size"), manifest.get("count"), manifest.get("sequence")
    for key, value, ok in (("shard_size", size, _whole(size) and size >= 1),
                           ("count", count, _whole(count) and count >= 0),
                           ("sequence", sequence, isinstance(sequence, bool))):
        if not ok:
            raise CacheError(f"{path}: {key} {value!r} is not valid")
    shards = manifest.get("shards")
    wanted = [hi - lo for lo, hi in _shard_ranges(count, size)]
    if not isinstance(shards, list) or len(shards) != len(wanted):
        raise CacheError(f"{path}: shards: expected {len(wanted)} shard records for {count} utterances")
    for k, (record, n) in enumerate(zip(shards, wanted)):
        if not (_file_record(record) and record.get("utterances") == n
                and record["file"] == _shard_path(directory, size, k).name
                and (_file_record(record.get("offsets")) if sequence else "offsets" not in record)):
            raise CacheError(f"{path}: shard record {k} does not match the manifest "
                             f"(sequence {sequence}, {n} utterances)")
    return manifest


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _file_record(record: Any) -> bool:
    return (isinstance(record, dict) and isinstance(record.get("file"), str)
            and "/" not in record["file"] and isinstance(record.get("sha256"), str)
            and isinstance(record.get("shape"), list) and isinstance(record.get("dtype"), str))


def _verified(path: Path, record: dict[str, Any]) -> np.ndarray:
    """The array at ``path`` memory-mapped, after its bytes, shape and dtype matched ``record``."""
    try:
        digest = _sha256(path)
    except OSError as e:
        raise CacheError(f"{path}: {e.strerror or e} (the manifest lists it)") from None
    if digest != record["sha256"]:
        raise CacheError(f"{path}: checksum differs from the one written (truncated or changed)")
    data = np.load(path, mmap_mode="r")
    if list(data.shape) != record["shape"] or str(data.dtype) != record["dtype"]:
        raise CacheError(f"{path}: shape {list(data.shape)} {data.dtype}, the manifest says "
                         f"{record['shape']} {record['dtype']}")
    return data


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _record(directory: Path, size: int, k: int, n: int, sequence: bool) -> dict[str, Any]:
    """What the manifest says of shard ``k``: checked on every read."""
    def describe(path: Path) -> dict[str, Any]:
        data = np.load(path, mmap_mode="r")
        return {"file": path.name, "shape": list(data.shape), "dtype": str(data.dtype), "sha256": _sha256(path)}

    record = {**describe(_shard_path(directory, size, k)), "utterances": n}
    if sequence:
        record["offsets"] = describe(_offsets_path(directory, size, k))
    return record


def _drop_differing_shards(directory: Path) -> None:
    """Delete the shards whose bytes differ from the old manifest's records (the others are
    kept and extraction resumes at the first missing one). Without a usable old manifest,
    shards are kept when whole, as after a killed extract."""
    try:
        manifest = _read_manifest(directory)
    except CacheError:
        return
    for record in (manifest or {}).get("shards", []):
        parts = [record] + ([record["offsets"]] if "offsets" in record else [])
        paths = [directory / part["file"] for part in parts]
        if any(p.exists() and _sha256(p) != part["sha256"] for p, part in zip(paths, parts)):
            for path in paths:
                path.unlink(missing_ok=True)


def _shard_ranges(count: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, count, size):
        yield lo, min(count, lo + size)


def _shard_path(directory: Path, size: int, k: int) -> Path:
    return directory / f"shard-{size}-{k:05d}.npy"


def _offsets_path(directory: Path, size: int, k: int) -> Path:
    return directory / f"shard-{size}-{k:05d}.offsets.npy"


def _counts_path(directory: Path, size: int, k: int) -> Path:
    return directory / f"shard-{size}-{k:05d}.counts.json"


def _shard_counts(directory: Path, size: int, shards: int) -> dict[str, int]:
    """The extractor's counts summed over the shards (the face step's frames without a face)."""
    total: dict[str, int] = {}
    for k in range(shards):
        try:
            counts = json.loads(_counts_path(directory, size, k).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        for key, value in counts.items() if isinstance(counts, dict) else ():
            if _whole(value):
                total[key] = total.get(key, 0) + value
    return total


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
