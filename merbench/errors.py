"""The one exception type for user errors, and the bounds on what an error line may quote.

The CLI catches it at the top, prints its message on one line and exits 2. Every other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

EXCERPT_CHARS = 80  # the most of one value an error message quotes
LINE_CHARS = 2000  # the most of one error line the CLI prints

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = EXCERPT_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6
_repr.maxlevel = 3


class MerbenchError(Exception):
    """Bad input from the user: a file, key or value, and what was expected."""


class Terminated(Exception):
    """A SIGTERM (``kill``, Slurm's ``scancel``, a requeue or a time limit) stopped a training
    run after the epoch in hand, with its ``last.pt`` written: resuming loses no epoch. The
    CLI prints its message on one line and exits 143 (128 + SIGTERM), as a killed process would."""

    EXIT_CODE = 143


def excerpt(value: Any) -> str:
    """``repr(value)`` cut to a short excerpt: a YAML alias bomb or a megabyte string is quoted
    in at most ``EXCERPT_CHARS`` characters, and never fully rendered on the way."""
    text = _repr.repr(value)
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS - 3] + "..."


def one_line(message: str) -> str:
    """``message`` as one bounded line: newlines folded, at most ``LINE_CHARS`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= LINE_CHARS else text[:LINE_CHARS - 3] + "..."


def read_text(path: Path, expected: str, missing: str | None = None) -> str:
    """The UTF-8 text of a file the user named; a missing file (``missing`` says what it should
    have been), a folder, an unreadable file or one that is not UTF-8 is a one-line error naming
    it and what was ``expected`` (e.g. "a recipe file (.yaml)")."""
    path = Path(path)
    if not path.exists():
        raise MerbenchError(f"{path}: {missing or f'no such file (expected {expected})'}")
    if path.is_dir():
        raise MerbenchError(f"{path}: is a folder, expected {expected}")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise MerbenchError(f"{path}: not UTF-8 text (byte {e.start}), expected {expected}") from None
    except OSError as e:
        raise MerbenchError(f"{path}: cannot be read ({e.strerror or e}), expected {expected}") from None
