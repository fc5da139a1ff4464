"""Atomic file writes: a temporary file in the target folder, fsync, then ``os.replace``.

A reader sees the old file or the new one, never half of one, even if the writer is killed.
A kill can leave the temporary file (``.<name>.<random>.tmp``) behind: the next writer of
that folder, holding its lock (``merbench.lock``), removes it with ``remove_temporaries``.
Files get the mode an ordinary ``open`` would give (0666 less the umask), not mkstemp's 0600,
so a group that may read a folder may read its results.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from merbench.errors import MerbenchError

TEMP_SUFFIX = ".tmp"


def output_problem(path: Path) -> str:
    """Why ``path`` cannot be written as a file ("" when it can, as far as paths tell): a folder
    there, or a file where one of its folders should be."""
    if path.is_dir():
        return "is a folder; expected a file path to write"
    for parent in path.parents:
        if parent.exists():
            if parent.is_dir():
                return ""
            return f"{parent} is a file, not a folder; expected a path whose folders are folders"
    return ""


def output_file(path: Path | str, option: str = "") -> Path:
    """``path`` checked as a file to write (before any work, and again by ``atomic_open``): its
    ``output_problem`` is a one-line error naming it (and the ``option`` it came from)."""
    path = Path(path)
    problem = output_problem(path)
    if problem:
        raise MerbenchError(f"{f'{option} {path}' if option else path}: {problem}")
    return path


def umask() -> int:
    """The process's umask, read without changing it where the kernel tells (Linux >= 4.7)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable read is a set and a set back
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path``."""
    path = output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def remove_temporaries(directory: Path | str, recursive: bool = False) -> list[Path]:
    """Delete the temporary files a killed ``atomic_open`` left in ``directory``; call it
    only while holding the folder's lock, so no live writer's file is taken. Returns them."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = directory.rglob(f".*{TEMP_SUFFIX}") if recursive else directory.glob(f".*{TEMP_SUFFIX}")
    removed = [p for p in found if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
