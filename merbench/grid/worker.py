"""Train one grid cell, in whatever process the runner chose; never raises for a failed run.

``run_cell`` is the one function every runner calls (in-process, in a spawned worker, or as a
submitit job). A run that raises leaves ``error.txt`` in its folder (the one-line error, then
the traceback) and comes back as a failed outcome: the other cells go on, unless the error is
a MerbenchError (bad input, such as a data root that is not set), which stops the grid, or a
SIGTERM that stopped the run (``Terminated``: recorded, then raised, for the process was asked
to end; as a submitit job, :func:`as_job` ends it without a result). While it trains,
``running.json`` names the host and process, which is how ``merbench grid status`` tells a
running cell from an interrupted one, and the process holds the cell's lock
(``merbench.lock``): a cell that another live process holds is never trained a second time.
A worker in a process of its own watches the grid's process and ends when it dies, so a
killed grid leaves no cells training behind it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

from merbench import lock, run_folder
from merbench.errors import MerbenchError, Terminated
from merbench.grid.manifest import ERROR, RUNNING
from merbench.results import atomic_write_text, read_result, utc_now, write_json

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Before torch is imported the environment binds OpenMP / MKL too; torch's setting always."""
    if "torch" not in sys.modules:
        for var in THREAD_VARS:
            os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def start_worker(threads: int, grid_pid: int) -> None:
    """Initializer of a local worker process: its threads, and the watch on the grid's process."""
    limit_threads(threads)
    watch_grid(grid_pid)


_watching: list[threading.Thread] = []


def watch_grid(grid_pid: int, interval: float = 0.5) -> None:
    """End this process as soon as the grid's process ``grid_pid`` is gone (``kill -9``
    included): orphaned, it would go on training cells beside the next run of the grid. A
    thread polls the process and this one's parent id (a submitit local job's parent is
    submitit's controller, not the grid); portable, unlike Linux's PR_SET_PDEATHSIG, which
    also fires when the thread that started the process ends. Started once per process."""
    if _watching:
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent and _running(grid_pid):
            time.sleep(interval)
        os._exit(1)  # the kernel drops the cell's lock; its last checkpoint lets the next run resume

    _watching.append(threading.Thread(target=watch, name="merbench-watch-grid", daemon=True))
    _watching[0].start()


def _running(pid: int) -> bool:
    """The process exists and has not exited (a zombie waiting to be reaped has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists


def running_record(**extra) -> dict:
    """What ``running.json`` holds: the host and process training the folder, since when, and
    the Slurm job it runs in (``scancel`` / ``scontrol`` take that id)."""
    record = {"host": socket.gethostname(), "pid": os.getpid(), "started_utc": utc_now(), **extra}
    if os.environ.get("SLURM_JOB_ID"):
        record["slurm_job"] = os.environ["SLURM_JOB_ID"]
    return record


def one_line(error: BaseException) -> str:
    if isinstance(error, MerbenchError):
        return str(error).splitlines()[0] if str(error) else "MerbenchError"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def previous_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / run_folder.RESULT).read_text()).get("status")
    except (OSError, json.JSONDecodeError):
        return None


def as_job(work: Callable, *args):
    """``work(*args)`` as a submitit job. A SIGTERM that stopped its run (``Terminated``, with
    last.pt written) ends the job without a result, as a killed job ends: Slurm's requeue then
    starts it again and the command waits for it, and a cancel reads as Slurm's state."""
    try:
        return work(*args)
    except Terminated as e:
        print(f"stopped: {one_line(e)}", file=sys.stderr, flush=True)
        logging.shutdown()  # the run's log file
        os._exit(Terminated.EXIT_CODE)


def run_cell(recipe: dict, grid_dir: str, threads: int, command: list[str], run: str,
             grid_pid: int | None = None) -> dict:
    """Train (or resume, or retry) one cell; returns ``{run, ok, error, user_error, seconds}``.

    ``run`` is the folder name the planner gave the cell: a worker never recomputes it, so an
    edit of merbench's source while a grid runs cannot send a cell to another folder.
    ``grid_pid``: this process was started for the grid (a submitit local job): end with that
    process.
    """
    if grid_pid is not None:
        watch_grid(grid_pid)
    limit_threads(threads)
    started = time.perf_counter()
    try:
        with lock.hold(Path(grid_dir) / run):
            return _run_cell(recipe, Path(grid_dir), threads, command, run, started)
    except lock.LockHeld as e:  # another live process trains this cell: leave it to that one
        return {"run": run, "ok": False, "error": one_line(e), "user_error": False,
                "seconds": round(time.perf_counter() - started, 2)}


def _run_cell(recipe: dict, grid: Path, threads: int, command: list[str], run: str, started: float) -> dict:
    # start-up: torch only when this runs
    from merbench.train import train

    run_dir = grid / run
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR).unlink(missing_ok=True)
    marker = run_dir / RUNNING
    write_json(marker, running_record(threads=threads))
    error, user_error = None, False
    try:
        # A run that ended failed (NaN) starts over; one that was interrupted resumes from its
        # last checkpoint and ends with the numbers an uninterrupted run gives.
        if previous_status(run_dir) == "failed":
            (run_dir / run_folder.LAST).unlink(missing_ok=True)  # a failed run's checkpoint resumes nothing
        resume = (run_dir / run_folder.LAST).exists()
        run_dir = train(recipe, grid, resume=resume, progress=False, command=command, name=run)
        result = read_result(run_dir)
        if not result.ok:
            error = result.error or "the run failed"
    except Terminated as e:  # SIGTERM: recorded, then this process (the job) stops as asked
        atomic_write_text(run_dir / ERROR, f"{one_line(e)}\n")
        raise
    except Exception as e:  # any failure of one cell is recorded; the runner decides what follows
        error, user_error = one_line(e), isinstance(e, MerbenchError)
        atomic_write_text(run_dir / ERROR, f"{error}\n\n{traceback.format_exc()}")
    finally:
        marker.unlink(missing_ok=True)
    return {"run": run_dir.name, "ok": error is None, "error": error, "user_error": user_error,
            "seconds": round(time.perf_counter() - started, 2)}
