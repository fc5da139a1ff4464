"""result.json: schema, provenance and atomic writes.

Every number merbench reports comes from one of these files. A write goes to a temporary
file in the same folder and is moved into place with ``os.replace``, so a killed run never
leaves a half-written file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from merbench._version import __version__
from merbench.atomic import atomic_open
from merbench.errors import MerbenchError, excerpt, read_text

SCHEMA_VERSION = 1
REQUIRED_KEYS = (
    "schema_version", "run_id", "status", "created_utc", "command", "provenance", "recipe",
    "recipe_hash", "seed", "dataset", "model", "selection", "metrics",
)
PACKAGES = ("torch", "numpy", "scikit-learn", "transformers", "torch_geometric")
PACKAGE_ROOT = Path(__file__).resolve().parent  # the merbench package folder


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _no_nan(obj: Any, where: str = "") -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"non-finite number at {where or 'top level'}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _no_nan(v, f"{where}.{k}" if where else str(k))
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            _no_nan(v, f"{where}[{i}]")
    return obj


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(_no_nan(data), indent=2, sort_keys=False) + "\n")


def load_json(path: Path, missing: str):
    """The parsed JSON at ``path``; absent, a folder, unreadable, not UTF-8 or malformed is a
    one-line user error (``missing`` says what the file should have been). NaN and Infinity,
    which Python's json module would accept, are malformed here: merbench never writes them."""
    text = read_text(path, "a JSON file", missing)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise MerbenchError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except ValueError as e:  # _no_constant
        raise MerbenchError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise MerbenchError(f"{path}: not valid JSON (nested too deeply)") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number merbench writes")


def load_arrays(path: Path, what: str) -> dict:
    """Every array of an ``.npz`` file; a missing, truncated or foreign file is a one-line
    user error naming it (``what`` says what it should hold)."""
    import zipfile
    import zlib

    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise MerbenchError(f"{path}: {'is a folder' if path.is_dir() else 'no such file'} "
                            f"(expected {what}; train the run again)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise MerbenchError(f"{path}: not a readable .npz file of {what} ({type(e).__name__})") from None


def read_result(path: Path) -> dict:
    """Load and check a results file; a missing or corrupt one is a one-line user error."""
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    data = load_json(path, "no such results file (expected a run folder or its result.json)")
    if not isinstance(data, dict):
        raise MerbenchError(f"{path}: expected a JSON object with keys {', '.join(REQUIRED_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise MerbenchError(f"{path}: not a merbench result (missing key {missing[0]!r})")
    if data["schema_version"] != SCHEMA_VERSION:
        raise MerbenchError(f"{path}: schema_version {excerpt(data['schema_version'])}, expected {SCHEMA_VERSION}")
    problems = _metric_problems(data["metrics"])
    if problems:
        raise MerbenchError(f"{path}: {'; '.join(problems)}")
    data["_path"] = str(path)
    return data


def _metric_problems(metrics: Any) -> list[str]:
    """A table or a CI check must not average a string or a missing split: ``metrics`` is
    split -> metric -> number (the confusion matrix a list of lists of counts)."""
    if not isinstance(metrics, dict):
        return [f"metrics: expected a mapping of split -> metrics, got {excerpt(metrics)}"]
    problems = []
    for split, values in metrics.items():
        if not isinstance(values, dict):
            problems.append(f"metrics.{split}: expected a mapping of metric -> number, got {excerpt(values)}")
            continue
        for name, value in values.items():
            if name == "confusion":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"metrics.{split}.{name}: expected a number, got {excerpt(value)}")
    return problems


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """sha256 over merbench's own Python source: 'same code' for run identity.

    Computed once per process: the code a process runs is the code it imported.
    """
    h = hashlib.sha256()
    for file in sorted(PACKAGE_ROOT.rglob("*.py")):
        h.update(str(file.relative_to(PACKAGE_ROOT)).encode())
        h.update(file.read_bytes())
    return h.hexdigest()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(threads: int, device: str) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--", str(PACKAGE_ROOT))
    return {
        "merbench_version": __version__,
        "git_commit": commit,
        "git_dirty": bool(dirty) if dirty is not None else None,
        "source_hash": source_hash(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "threads": threads,
        "device": device,
    }


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
