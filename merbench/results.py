"""result.json: its record type, provenance and atomic writes.

Every number merbench reports comes from one of these files. ``Result`` is the file as a
typed record, the one place its schema lives: training builds one and ``write``s it, every
reader gets one from ``read_result`` (a file that is not a complete result is a one-line
error naming it). A write goes to a temporary file in the same folder and is moved into place
with ``os.replace``, so a killed run never leaves a half-written file.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

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


@dataclass(frozen=True)
class DatasetInfo:
    """What the run was trained on (``result.json``'s ``dataset``)."""

    name: str
    task: str  # classification | regression
    protocol: str | None
    modalities: list[str]
    dims: dict[str, int]  # feature dimension per modality, as the model received them
    label_names: list[str]
    fingerprint: str  # "" in a file that does not record it (tables then link its runs by their recipes)
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> count
    counts: dict[str, Any] = field(default_factory=dict)  # dialogues and utterances per split
    info: dict[str, Any] = field(default_factory=dict)  # what the reader says of the release

    def to_json(self) -> dict:
        return {"name": self.name, "task": self.task, "protocol": self.protocol, "modalities": self.modalities,
                "dims": self.dims, "fingerprint": self.fingerprint, "label_names": self.label_names,
                "class_counts": self.class_counts, "counts": self.counts, "info": self.info}

    @classmethod
    def from_json(cls, d: dict) -> "DatasetInfo":
        return cls(d["name"], d["task"], d.get("protocol"), list(d["modalities"]), dict(d["dims"]),
                   list(d.get("label_names") or []), d.get("fingerprint", ""), dict(d.get("class_counts") or {}),
                   dict(d.get("counts") or {}), dict(d.get("info") or {}))


@dataclass(frozen=True)
class ModelInfo:
    """The model that was trained (``result.json``'s ``model``)."""

    name: str  # registry name
    class_name: str
    args: dict[str, Any]  # resolved constructor arguments (defaults included)
    parameters: int
    level: str  # utterance | dialogue
    num_outputs: int  # classes, or 1 for regression
    # Switches that were on and built something / on but built nothing with the run's
    # modalities (``MerModel.active_components``); None for files written before they were recorded.
    active_components: tuple[str, ...] | None = None
    inactive_components: tuple[str, ...] | None = None

    def to_json(self) -> dict:
        out = {"name": self.name, "class": self.class_name, "args": self.args, "parameters": self.parameters,
               "level": self.level, "num_outputs": self.num_outputs}
        if self.active_components is not None:
            out["active_components"] = list(self.active_components)
        if self.inactive_components is not None:
            out["inactive_components"] = list(self.inactive_components)
        return out

    @classmethod
    def from_json(cls, m: dict, dataset: DatasetInfo) -> "ModelInfo":
        # Files written before model.num_outputs was recorded: derived as training derives it.
        num_outputs = m.get("num_outputs", 1 if dataset.task == "regression" else len(dataset.label_names))
        return cls(m["name"], m.get("class", ""), dict(m.get("args") or {}), int(m.get("parameters", 0)),
                   m.get("level", "utterance"), int(num_outputs),
                   _optional_tuple(m.get("active_components")), _optional_tuple(m.get("inactive_components")))


def _optional_tuple(value) -> tuple | None:
    return None if value is None else tuple(value)


@dataclass(frozen=True)
class Selection:
    """How the kept epoch was chosen: on the validation split only."""

    split: str
    metric: str
    best_epoch: int
    best_value: float | None
    epochs_run: int

    def to_json(self) -> dict:
        return {"split": self.split, "metric": self.metric, "best_epoch": self.best_epoch,
                "best_value": self.best_value, "epochs_run": self.epochs_run}


@dataclass(frozen=True, eq=False)
class Result(Mapping):
    """One ``result.json``: written by training (``write``), read by everything else
    (``read_result``). ``path`` is the file it was read from (None before it is written).

    It also reads as the mapping merbench writes (``result["metrics"]``, ``to_json()``), for
    code written against the file's JSON; merbench's own code uses the attributes."""

    run_id: str
    status: str  # ok | failed
    created_utc: str
    command: list[str]
    provenance: dict[str, Any]  # versions, git commit, source hash, threads, device, plugin
    recipe: dict[str, Any]  # the resolved recipe as written (recipes are data)
    recipe_hash: str
    seed: int
    dataset: DatasetInfo
    model: ModelInfo
    selection: Selection
    seconds: float | None  # wall time of the training loop (``training.seconds``)
    history: list[dict[str, Any]]  # one row per epoch, as metrics.csv (``training.history``)
    metrics: dict[str, dict[str, Any]]  # split -> metric -> value (confusion: a list of lists)
    error: str | None = None  # why a failed run failed
    schema_version: int = SCHEMA_VERSION
    path: Path | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def run_dir(self) -> Path:
        assert self.path is not None, "a result not yet written has no folder"
        return self.path.parent

    def to_json(self) -> dict:
        """``result.json``'s content, keys in the order the file has always had."""
        out = {"schema_version": self.schema_version, "run_id": self.run_id, "status": self.status,
               "created_utc": self.created_utc, "command": self.command, "provenance": self.provenance,
               "recipe": self.recipe, "recipe_hash": self.recipe_hash, "seed": self.seed,
               "dataset": self.dataset.to_json(), "model": self.model.to_json(),
               "selection": self.selection.to_json(),
               "training": {"seconds": self.seconds, "history": self.history}, "metrics": self.metrics}
        if self.error is not None:
            out["error"] = self.error
        return out

    def write(self, run_dir: Path) -> "Result":
        """Write ``run_dir/result.json`` atomically; returns the record with its path."""
        path = Path(run_dir) / RESULT_FILE
        write_json(path, self.to_json())
        return dataclasses.replace(self, path=path)

    def replace(self, **changes: Any) -> "Result":
        return dataclasses.replace(self, **changes)

    @functools.cached_property
    def _json(self) -> dict:
        return self.to_json()

    def __getitem__(self, key: str) -> Any:
        return self._json[key]

    def __iter__(self):
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    @classmethod
    def from_json(cls, data: Any, path: Path) -> "Result":
        """The record of a parsed ``result.json``; anything that is not a complete merbench
        result is a one-line error naming ``path``."""
        if not isinstance(data, dict):
            raise MerbenchError(f"{path}: expected a JSON object with keys {', '.join(REQUIRED_KEYS)}")
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise MerbenchError(f"{path}: not a merbench result (missing key {missing[0]!r})")
        if data["schema_version"] != SCHEMA_VERSION:
            raise MerbenchError(f"{path}: schema_version {excerpt(data['schema_version'])}, expected {SCHEMA_VERSION}")
        problems = _metric_problems(data["metrics"]) + _recipe_problems(data["recipe"])
        if data["status"] not in ("ok", "failed"):
            problems.append(f"status: expected ok or failed, got {excerpt(data['status'])}")
        if problems:
            raise MerbenchError(f"{path}: {'; '.join(problems)}")
        try:
            dataset = DatasetInfo.from_json(data["dataset"])
            model = ModelInfo.from_json(data["model"], dataset)
            s = data["selection"]
            selection = Selection(s["split"], s["metric"], s["best_epoch"], s.get("best_value"), s["epochs_run"])
            training = data.get("training") or {}
            return cls(str(data["run_id"]), data["status"], data["created_utc"], data["command"],
                       dict(data["provenance"]), data["recipe"], data["recipe_hash"], int(data["seed"]), dataset,
                       model, selection, training.get("seconds"), list(training.get("history") or []),
                       data["metrics"], data.get("error"), data["schema_version"], Path(path))
        except KeyError as e:
            raise MerbenchError(f"{path}: not a complete merbench result (missing {e})") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise MerbenchError(f"{path}: not a complete merbench result ({e})") from None


RESULT_FILE = "result.json"


def read_result(path: Path) -> Result:
    """Load and check a results file (a run folder or its result.json); a missing, corrupt or
    incomplete one is a one-line user error."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    data = load_json(path, "no such results file (expected a run folder or its result.json)")
    return Result.from_json(data, path)


def _recipe_problems(recipe: Any) -> list[str]:
    """Readers group runs by their recipe: it must be the resolved recipe, a mapping whose
    ``dataset`` and ``model`` name what was trained and whose ``train`` holds the seed."""
    if not isinstance(recipe, Mapping):
        return [f"recipe: expected the resolved recipe (a mapping), got {excerpt(recipe)}"]
    problems = []
    for section in ("dataset", "model", "train"):
        if not isinstance(recipe.get(section), Mapping):
            problems.append(f"recipe.{section}: expected a mapping, got {excerpt(recipe.get(section))}")
    return problems


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
