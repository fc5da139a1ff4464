"""Train one grid cell, in whatever process the runner chose; never raises for a failed run.

``run_cell`` is the one function every runner calls (in-process, in a spawned worker, or as a
submitit job). A run that raises leaves ``error.txt`` in its folder (the one-line error, then
the traceback) and comes back as a failed outcome: the other cells go on, unless the error is
a MerbenchError (bad input, such as a data root that is not set), which stops the grid. While it trains,
``running.json`` names the host and process, which is how ``merbench grid status`` tells a
running cell from an interrupted one.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path

from merbench import runs
from merbench.errors import MerbenchError
from merbench.grid.manifest import ERROR, RUNNING
from merbench.results import atomic_write_text, utc_now, write_json

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Before torch is imported the environment binds OpenMP / MKL too; torch's setting always."""
    if "torch" not in sys.modules:
        for var in THREAD_VARS:
            os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def one_line(error: BaseException) -> str:
    if isinstance(error, MerbenchError):
        return str(error).splitlines()[0] if str(error) else "MerbenchError"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def previous_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / runs.RESULT).read_text()).get("status")
    except (OSError, json.JSONDecodeError):
        return None


def run_cell(recipe: dict, grid_dir: str, threads: int, command: list[str], run: str) -> dict:
    """Train (or resume, or retry) one cell; returns ``{run, ok, error, seconds}``.

    ``run`` is the folder name the planner gave the cell: a worker never recomputes it, so an
    edit of merbench's source while a grid runs cannot send a cell to another folder.
    """
    limit_threads(threads)
    import merbench.data  # noqa: F401  (registrations, needed in a fresh process)
    import merbench.models  # noqa: F401
    from merbench.train import train

    grid = Path(grid_dir)
    run_dir = grid / run
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR).unlink(missing_ok=True)
    marker = run_dir / RUNNING
    write_json(marker, {"host": socket.gethostname(), "pid": os.getpid(), "started_utc": utc_now(),
                        "threads": threads})
    started = time.perf_counter()
    error, user_error = None, False
    try:
        # A run that ended failed (NaN) starts over; one that was interrupted resumes from its
        # last checkpoint and ends with the numbers an uninterrupted run gives.
        failed_before = previous_status(run_dir) == "failed"
        resume = (run_dir / runs.LAST).exists() and not failed_before
        run_dir = train(recipe, grid, resume=resume, force=failed_before, progress=False, command=command,
                        name=run)
        result = json.loads((run_dir / runs.RESULT).read_text())
        if result["status"] != "ok":
            error = result.get("error") or "the run failed"
    except Exception as e:  # any failure of one cell is recorded; the runner decides what follows
        error, user_error = one_line(e), isinstance(e, MerbenchError)
        atomic_write_text(run_dir / ERROR, f"{error}\n\n{traceback.format_exc()}")
    finally:
        marker.unlink(missing_ok=True)
    return {"run": run_dir.name, "ok": error is None, "error": error, "user_error": user_error,
            "seconds": round(time.perf_counter() - started, 2)}
