"""The registry of real-dataset formats and ``read_corpus``, which finds the format of a root.

Each format is one module (``iemocap_raw.py``, ``mosi_bclstm.py``, ...) with a reader
``read_<format>(root, *, labels, protocol, fold, modalities, <options>) -> RawCorpus``, a
``detect(root) -> bool`` and what it looks for; a layout that several corpora share is one
module with an object per corpus (``cmu_mmsa.MOSEI``, ``cmu_csd.MOSI``, ...) holding the same.
``FORMATS`` holds the readers with meta ``dataset``, ``description``, ``looks_for`` and
``detect``.

Count checks: a reader compares what it read with the release's counts and appends one
line per difference to ``RawCorpus.info["warnings"]`` (no Python warning is raised); the
caller shows them and the results file keeps them.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from merbench.data import (
    cmu_csd, cmu_mmsa, iemocap_cosmic, iemocap_dialoguernn, iemocap_raw, meld_dialoguernn, meld_raw,
    mosi_bclstm,
)
from merbench.data.types import RawCorpus
from merbench.errors import MerbenchError
from merbench.registry import Registry, closest

Reader = Callable[..., RawCorpus]
FORMATS: Registry[Reader] = Registry("dataset format")

# Order within a dataset = the order detection tries them in. A format module gives FORMAT,
# DESCRIPTION, LOOKS_FOR and detect; a layout shared by several corpora gives one object per
# corpus with format, description, looks_for, detect and read.
_ORDER: list[str] = []


def _register(dataset: str, format: str, reader: Reader, description: str, looks_for: str,
              detect: Callable[[Path], bool]) -> None:
    FORMATS.register(format, reader, dataset=dataset, description=description, looks_for=looks_for,
                     detect=detect)
    _ORDER.append(format)


for _dataset, _module, _reader in (
    ("iemocap", iemocap_raw, iemocap_raw.read_iemocap_raw),
    ("iemocap", iemocap_cosmic, iemocap_cosmic.read_iemocap_cosmic),
    ("iemocap", iemocap_dialoguernn, iemocap_dialoguernn.read_iemocap_dialoguernn),
    ("meld", meld_raw, meld_raw.read_meld_raw),
    ("meld", meld_dialoguernn, meld_dialoguernn.read_meld_dialoguernn),
    ("mosi", mosi_bclstm, mosi_bclstm.read_mosi_bclstm),
):
    _register(_dataset, _module.FORMAT, _reader, _module.DESCRIPTION, _module.LOOKS_FOR, _module.detect)
for _spec in (cmu_mmsa.MOSEI, cmu_csd.MOSEI, cmu_mmsa.MOSI, cmu_csd.MOSI):
    _register(_spec.release.name, _spec.format, _spec.read, _spec.description, _spec.looks_for, _spec.detect)

_COMMON = ("root", "labels", "protocol", "fold", "modalities")


def datasets() -> list[str]:
    return sorted({e.meta["dataset"] for e in FORMATS.entries()})


def formats_of(dataset: str) -> list[str]:
    """Format names of ``dataset`` in detection order."""
    names = [name for name in _ORDER if FORMATS.entry(name).meta["dataset"] == dataset]
    if not names:
        valid = datasets()
        raise MerbenchError(f"unknown dataset {dataset!r}{closest(dataset, valid)}; datasets with "
                            f"real-data formats: {', '.join(valid)}")
    return names


def detect_format(dataset: str, root: Path) -> str:
    """The one format of ``dataset`` whose files are at ``root``; else a one-line error."""
    names = formats_of(dataset)
    found = [n for n in names if FORMATS.entry(n).meta["detect"](root)]
    if len(found) == 1:
        return found[0]
    if found:
        raise MerbenchError(f"{root} matches several {dataset} formats ({', '.join(found)}); "
                            f"pass --format")
    looked = "; ".join(f"{n} ({FORMATS.entry(n).meta['looks_for']})" for n in names)
    raise MerbenchError(f"no {dataset} format found at {root}: looked for {looked}; "
                          f"pass --format to name one")


def options_of(format: str) -> list[str]:
    """The format-specific options of a reader (beyond root, labels, protocol, fold, modalities)."""
    params = inspect.signature(FORMATS.get(format)).parameters
    return [p for p in params if p not in _COMMON]


def read_corpus(dataset: str, root: Path, format: str | None = None, labels: str | None = None,
                protocol: str | None = None, fold: int | None = None, *,
                modalities: Sequence[str] = (), **options: Any) -> RawCorpus:
    """Read ``dataset`` at ``root`` in ``format`` (detected from the files when None).

    ``labels`` / ``protocol`` None = the format's default (iemocap6 / session5-test,
    meld7 / official, sentiment / standard for MOSEI and MOSI's MMSA and .csd formats,
    binary / bclstm for mosi_bclstm). ``modalities``: the media that must exist.
    ``options``: format-specific keywords (``options_of(format)``), e.g. missing_media,
    nonfinite, folds; an unknown one is an error.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise MerbenchError(f"dataset {dataset}: root {root} does not exist")
    if format is None:
        format = detect_format(dataset, root)
    elif format not in formats_of(dataset):
        entry = FORMATS.entry(format)  # unknown name: lists the valid ones
        raise MerbenchError(f"format {format!r} reads {entry.meta['dataset']}, not {dataset}; "
                            f"{dataset} formats: {', '.join(formats_of(dataset))}")
    valid = options_of(format)
    for key in options:
        if key not in valid:
            raise MerbenchError(f"format {format}: unknown option {key!r}{closest(key, valid)}; "
                                f"valid: {', '.join(valid) or 'none'}")
    return FORMATS.get(format)(root, labels=labels, protocol=protocol, fold=fold,
                               modalities=tuple(modalities), **options)


# Where a real dataset's files are: the recipe's root, else MERBENCH_<DATASET>_ROOT.

def root_variable(dataset: str) -> str:
    return f"MERBENCH_{dataset.upper()}_ROOT"


def given_root(dataset: str, root: str) -> str:
    """The recipe's root, else the environment's; "" when neither says."""
    return root or os.environ.get(root_variable(dataset), "")


def resolve_root(dataset: str, root: str) -> Path:
    env = root_variable(dataset)
    value = given_root(dataset, root)
    if not value:
        raise MerbenchError(f"dataset.root: no {dataset} location given; set it in the recipe, "
                            f"with --set dataset.root=PATH, or in the environment variable {env}")
    path = Path(os.path.expanduser(value))
    if not path.exists():
        raise MerbenchError(f"dataset.root: {path} does not exist (expected your copy of {dataset})")
    return path
