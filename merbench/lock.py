"""One writer per folder: a lock file beside the folder, held for the writer's whole life.

``hold(folder)`` creates ``<parent>/.<name>.lock`` and takes an exclusive ``flock`` on it,
then writes the owner into it (pid, host, start time, command). A second writer finds the
lock taken and stops with one line naming the holder (or, with ``wait=True``, waits for it:
the feature cache does, so two grid workers that need the same features extract them once).
The kernel drops a ``flock`` when its process dies, however it dies, so the lock of a killed
process is stale at once and the next writer takes it over; the file it leaves names the dead
owner until then. The lock file sits beside the folder, not in it, so a folder can be
replaced whole (``train --force``) while its lock is held. Holding is re-entrant within a
process: a grid worker holds its cell's lock and ``train`` takes it again.

Locks are advisory and need a file system with ``flock`` (local disks; NFS through its lock
manager).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from merbench.errors import MerbenchError
from merbench.results import utc_now

_held: dict[Path, int] = {}  # lock file -> how many nested holds this process has on it


@dataclass
class Holder:
    """Who holds a lock: read from the lock file."""

    pid: int
    host: str
    started_utc: str
    command: str

    def describe(self) -> str:
        command = self.command if len(self.command) <= 80 else self.command[:77] + "..."
        return f"pid {self.pid} on {self.host}, since {self.started_utc}: {command}"


class LockHeld(MerbenchError):
    """Another live process writes the folder."""

    def __init__(self, folder: Path, holder: Holder | None) -> None:
        self.holder = holder
        who = holder.describe() if holder else "a process that has not written its name yet"
        super().__init__(f"{folder}: another merbench process is writing it ({who}); "
                         f"wait for it to finish or stop it")


def lock_path(folder: Path | str) -> Path:
    folder = Path(folder).absolute()
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def hold(folder: Path | str, *, wait: bool = False,
         on_wait: Callable[[Holder | None], None] | None = None) -> Iterator[None]:
    """Be the one writer of ``folder`` (which need not exist yet) inside the ``with`` block.

    Held by another live process: ``LockHeld``, or with ``wait`` block until it is released
    (``on_wait(holder)`` is called once first, to say so).
    """
    path = lock_path(folder)
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    fd = _acquire(path, Path(folder), wait, on_wait)
    _held[path] = 1
    try:
        yield
    finally:
        del _held[path]
        # Unlinked before the flock is dropped: a process waiting on this file then sees that
        # its file is gone and starts over on a new one (see _acquire).
        path.unlink(missing_ok=True)
        os.close(fd)


def holder(folder: Path | str) -> Holder | None:
    """The live process that holds ``folder``'s lock, or None when no process does."""
    path = lock_path(folder)
    if path in _held:
        return _me()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise MerbenchError(f"{path}: cannot read the lock file ({e.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None  # nobody holds it: a file left by a dead process
    except BlockingIOError:
        return _read(fd)
    finally:
        os.close(fd)


def _acquire(path: Path, folder: Path, wait: bool, on_wait) -> int:
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise MerbenchError(f"{path.parent}: cannot create or open the lock file {path.name} "
                                f"({e.strerror}); the folder must be writable") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read(fd)
            if not wait:
                os.close(fd)
                raise LockHeld(folder, owner) from None
            if on_wait is not None:
                on_wait(owner)
                on_wait = None
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder we waited for removed this file: take the new one
    info = json.dumps(_me().__dict__).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, info, 0)
    return fd


def _me() -> Holder:
    return Holder(os.getpid(), socket.gethostname(), utc_now(), shlex.join(sys.argv))


def _read(fd: int) -> Holder | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return Holder(int(data["pid"]), str(data["host"]), str(data["started_utc"]), str(data["command"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None  # being written this instant, or not ours
