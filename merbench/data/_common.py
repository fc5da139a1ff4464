"""Plumbing shared by the dataset-format readers: checks, text decoding, counts, splits.

Nothing here knows a dataset; the per-dataset rules (label sets, protocols, release counts)
live in ``_iemocap.py``, ``_meld.py`` and ``_cmu.py`` (MOSEI, MOSI) or in a format's own module.
"""

from __future__ import annotations

import csv
import hashlib
import pickle
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from merbench.data.types import MODALITIES, RawCorpus, RawDialogue
from merbench.errors import MerbenchError
from merbench.registry import closest

MISSING_MEDIA = ("error", "drop")
NONFINITE = ("error", "zero")
VALID_FRACTION = 0.1


def choose(fmt: str, key: str, value: Any, valid: Sequence[Any]) -> Any:
    """``value`` when it is one of ``valid``, else a one-line error naming ``key``."""
    if value not in valid:
        raise MerbenchError(
            f"{fmt}: {key} {value!r} is not valid{closest(value, valid)}; "
            f"expected one of {', '.join(map(str, valid))}"
        )
    return value


def check_modalities(fmt: str, modalities: Iterable[str]) -> tuple[str, ...]:
    modalities = tuple(modalities or ())
    for m in modalities:
        choose(fmt, "modality", m, MODALITIES)
    return modalities


def check_fold(fmt: str, protocol: str, fold: int | None, folds: Sequence[int] = ()) -> int | None:
    """The fold for protocols that have folds (``folds`` non-empty); None elsewhere."""
    if not folds:
        if fold is not None:
            raise MerbenchError(f"{fmt}: protocol {protocol!r} has no folds; got fold {fold}")
        return None
    if fold is None or int(fold) not in folds:
        raise MerbenchError(
            f"{fmt}: protocol {protocol!r} needs fold in {min(folds)}..{max(folds)}; got {fold}"
        )
    return int(fold)


def require_file(path: Path, fmt: str, what: str) -> Path:
    if not path.is_file():
        raise MerbenchError(f"{fmt}: missing file {path} (expected {what})")
    return path


def pickle_path(root: Path, names: Sequence[str], fmt: str) -> Path:
    """``root`` itself when it is a file, else the first of ``names`` inside it."""
    if root.is_file():
        return root
    for name in names:
        if (root / name).is_file():
            return root / name
    raise MerbenchError(f"{fmt}: no {' or '.join(names)} in {root}")


def load_pickle(path: Path, fmt: str) -> Any:
    # Pickles written by Python 2 (DialogueRNN, COSMIC) need latin1 to load numpy arrays
    # and byte strings; for Python 3 pickles the encoding is unused.
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, ImportError) as e:
        raise MerbenchError(f"{fmt}: {path} is not a readable pickle ({type(e).__name__}: {e})") from None


def load_tuple_pickle(path: Path, fmt: str, names: Sequence[str]) -> tuple:
    """A pickle holding a tuple of ``len(names)`` items (the DialogueRNN feature files)."""
    data = load_pickle(path, fmt)
    if not isinstance(data, (list, tuple)) or len(data) != len(names):
        raise MerbenchError(
            f"{fmt}: {path} holds {type(data).__name__} of length "
            f"{len(data) if hasattr(data, '__len__') else '?'}; expected the {len(names)}-tuple "
            f"({', '.join(names)})"
        )
    return tuple(data)


def check_per_utterance(fmt: str, path: Path, tables: dict, dialogue: Any, n: int) -> None:
    """Every per-dialogue table of a DialogueRNN-style pickle has one entry per utterance."""
    for name, table in tables.items():
        if dialogue not in table or len(table[dialogue]) != n:
            got = len(table[dialogue]) if dialogue in table else "no"
            raise MerbenchError(f"{fmt}: {path}: {name}[{dialogue!r}] has {got} entries; "
                                f"expected {n}, one per utterance")


def feature_array(x: Any, fmt: str, path: Path, record: str, modality: str,
                  dims: Sequence[int], ndim: int, nonfinite: str = "error",
                  fixed: dict[str, int] | None = None) -> np.ndarray:
    """``x`` as float32 with last dimension in ``dims``; NaN or inf is an error unless
    ``nonfinite == "zero"`` (then set to 0 and counted in ``fixed[modality]``)."""
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise MerbenchError(f"{fmt}: {path}: {record} {modality} is not a numeric array") from None
    if arr.ndim != ndim or arr.shape[-1] not in dims:
        want = " or ".join(str(d) for d in dims)
        raise MerbenchError(
            f"{fmt}: {path}: {record} {modality} has shape {arr.shape}; expected {ndim} dims "
            f"with last dimension {want}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        if nonfinite != "zero":
            raise MerbenchError(
                f"{fmt}: {path}: {record} {modality} holds {int(bad.sum())} NaN/inf values; "
                f"expected finite features (option nonfinite='zero' sets them to 0)"
            )
        arr = np.where(bad, np.float32(0), arr)
        if fixed is not None:
            fixed[modality] = fixed.get(modality, 0) + int(bad.sum())
    return arr


def media(path: Path, modality: str, modalities: tuple[str, ...], fmt: str, record: str,
          missing_media: str, missing: dict[str, int]) -> str | None | bool:
    """The media path when the file exists; None when it is absent and ``modality`` was not
    asked for; False (drop the utterance) or an error when it was asked for."""
    if path.is_file():
        return str(path)
    if modality not in modalities:
        return None
    if missing_media == "drop":
        missing[modality] = missing.get(modality, 0) + 1
        return False
    raise MerbenchError(
        f"{fmt}: missing {modality} file {path} for {record} (option missing_media='drop' "
        f"drops such utterances)"
    )


# --- Text ------------------------------------------------------------------------------


def decode_file(data: bytes) -> tuple[str, str]:
    """Text of a file and the encoding used: UTF-8 (BOM allowed), else cp1252 per file.

    cp1252 leaves five bytes undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D); they are read as
    their latin-1 characters so that decoding never fails.
    """
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    chars = []
    for b in data:
        try:
            chars.append(bytes([b]).decode("cp1252"))
        except UnicodeDecodeError:
            chars.append(chr(b))
    return "".join(chars), "cp1252"


def _single_byte(c: str) -> int | None:
    """The byte ``c`` came from when a UTF-8 text was wrongly read as cp1252 or latin-1."""
    if ord(c) < 256:
        return ord(c)
    try:
        return c.encode("cp1252")[0]
    except UnicodeEncodeError:
        return None


def fix_mojibake(text: str) -> str:
    """Undo the common mis-encodings of the MELD transcripts (and the like).

    Rule 1: a field whose every character maps back to one byte (latin-1, or cp1252 for
    characters such as "€" and "™") and whose bytes form valid UTF-8 with at least one
    multi-byte sequence was UTF-8 read as cp1252/latin-1: it is replaced by the UTF-8
    decoding ("Itâ€™s" -> "It’s", "Â\\xa0" -> "\\xa0"). Text that is not valid UTF-8 this way,
    such as "café", is left alone.
    Rule 2: C1 control characters left over (U+0080..U+009F, cp1252 bytes read as latin-1,
    e.g. "\\x92") become their cp1252 characters ("\\x92" -> "’").
    """
    if text.isascii():
        return text
    raw = [_single_byte(c) for c in text]
    if all(b is not None for b in raw):
        data = bytes(raw)  # type: ignore[arg-type]
        if any(b >= 0x80 for b in data):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
    out = []
    for c in text:
        if 0x80 <= ord(c) <= 0x9F:
            try:
                c = bytes([ord(c)]).decode("cp1252")
            except UnicodeDecodeError:
                pass
        out.append(c)
    return "".join(out)


def checked_rows(reader: Any, path: Path, fmt: str, expected: str) -> Iterator[Any]:
    """The rows of a ``csv.reader`` / ``csv.DictReader`` over ``path``: a file the csv module
    cannot parse (binary data, a field over its size limit, a stray carriage return) is one
    error naming the file, the line and what was ``expected``, not a ``csv.Error`` traceback."""
    try:
        yield from reader
    except csv.Error as e:
        raise MerbenchError(f"{fmt}: {path} line {max(reader.line_num, 1)}: not readable as CSV ({e}); "
                            f"expected {expected}") from None


# --- Splits and counts -------------------------------------------------------------------


def _name_key(dialogue_id: str) -> str:
    return hashlib.sha256(f"merbench-valid:{dialogue_id}".encode()).hexdigest()


def carve_validation(ids: Sequence[str], groups: dict[str, str] | None = None,
                     fraction: float = VALID_FRACTION) -> set[str]:
    """A fixed validation carve-out of whole dialogues, seeded by name.

    Each dialogue's place is the sha256 of its id, so the choice depends on nothing but the
    ids (not on file order, seeds or other dialogues). Within each group (e.g. session)
    the ``round(fraction * n)`` dialogues with the lowest hashes are taken, so every group
    gives its share; at least one dialogue when the pool has two or more.
    """
    by_group: dict[str, list[str]] = {}
    for i in ids:
        by_group.setdefault(groups[i] if groups else "", []).append(i)
    chosen: set[str] = set()
    for members in by_group.values():
        chosen.update(sorted(members, key=_name_key)[: int(round(fraction * len(members)))])
    if not chosen and len(ids) >= 2:
        chosen.add(min(ids, key=_name_key))
    return chosen


def split_counts(dialogues: Sequence[RawDialogue]) -> dict[str, int]:
    counts = {s: 0 for s in ("train", "valid", "test")}
    for d in dialogues:
        counts[d.split] += len(d.utterances)
    counts = {s: n for s, n in counts.items() if n}
    counts["total"] = sum(counts.values())
    return counts


def compare_counts(fmt: str, counts: dict[str, int], expected: dict[str, int],
                   reference: str) -> list[str]:
    """One warning per count that differs from the release's, naming both numbers.

    ``expected`` keys are split names, ``total`` or sums such as ``train+valid``.
    """
    warnings = []
    for key, want in expected.items():
        got = sum(counts.get(part, 0) for part in key.split("+"))
        if got != want:
            warnings.append(f"{fmt}: {key} has {got:,} utterances; {reference} has {want:,}")
    return warnings


def finish(corpus: RawCorpus, fmt: str, expected: dict[str, int], reference: str,
           sources: Sequence[Path | str], extra: dict[str, Any] | None = None) -> RawCorpus:
    """Sort dialogues, fill ``info`` (format, source, counts, expected counts, warnings)."""
    if not corpus.dialogues:
        others = f" and {len(sources) - 1} other files" if len(sources) > 1 else ""
        raise MerbenchError(f"{fmt}: no utterance left after reading {sources[0]}{others}")
    order = {"train": 0, "valid": 1, "test": 2}
    corpus.dialogues.sort(key=lambda d: (order[d.split], d.id))
    counts = split_counts(corpus.dialogues)
    info = corpus.info
    info.setdefault("warnings", [])
    info.update(format=fmt, source=[str(s) for s in sources], counts=counts,
                expected_counts=dict(expected), dialogue_counts={
                    s: sum(d.split == s for d in corpus.dialogues) for s in order})
    info.update(extra or {})
    info["warnings"] = info["warnings"] + compare_counts(fmt, counts, expected, reference)
    return corpus
