"""Run a grid's unfinished cells: serially, in ``--jobs N`` local processes, or through submitit.

Every runner calls ``worker.run_cell`` for each cell that is not finished, so a cell trains
the same way whichever runner ran it. Threads per cell are fixed (``--threads``, default 1)
rather than derived from the runner: on CPU a different thread count changes the order of
floating-point sums and so, over an epoch, the numbers; one fixed count keeps a serial, a
``--jobs 4`` and a Slurm grid bitwise comparable. ``--jobs N`` x ``--threads T`` should not
exceed the cores, or the processes slow each other down.

One writer per grid: a command holds the grid folder's lock (``merbench.lock``) while it
runs, and each cell's lock while the cell trains. A cell whose lock a live process holds (a
worker of a killed grid that has not noticed yet, or a ``merbench train`` into the cell) is
left to that process. Local worker processes end when the grid's process dies.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from merbench import lock, run_folder
from merbench.atomic import remove_temporaries
from merbench.device import DEFAULT_THREADS
from merbench.errors import MerbenchError
from merbench.grid.manifest import ERROR, GridCell, unique, write_manifest
from merbench.grid.worker import as_job, one_line, run_cell, start_worker
from merbench.results import atomic_write_text, read_result
from merbench.run import Run, load_run

LAUNCHERS = ("slurm", "local", "debug")  # submitit's AutoExecutor clusters
LOGS = "slurm_logs"  # submitit's folder inside the grid (pickled jobs, stdout / stderr)
# Seconds between looks at the jobs in flight. A look reads each job's result file; submitit
# asks the scheduler (sacct or squeue) at most every 2 s at first and less often as jobs age,
# whatever the loop asks, so a short poll costs the controller nothing more.
POLL_S = {"slurm": 1.0, "local": 0.5, "debug": 0.5}


@dataclass
class RunnerOptions:
    jobs: int | None = None  # at most this many cells at once (None: 1 locally, all on Slurm)
    launcher: str | None = None  # None: this process / local processes; else a submitit cluster
    threads: int = DEFAULT_THREADS  # torch threads per cell
    partition: str | None = None
    gpus_per_job: int = 0
    time_min: int = 60
    mem_gb: float | None = None
    cpus_per_task: int | None = None
    quiet: bool = False

    def check(self) -> None:
        if self.jobs is not None and self.jobs < 1:
            raise MerbenchError(f"--jobs {self.jobs}: expected a whole number of processes, at least 1")
        if self.threads < 1:
            raise MerbenchError(f"--threads {self.threads}: expected at least 1 thread per cell")
        if self.launcher is not None and self.launcher not in LAUNCHERS:
            raise MerbenchError(f"--launcher {self.launcher}: expected one of {', '.join(LAUNCHERS)}")
        if self.launcher != "slurm":
            for flag, value in (("--partition", self.partition), ("--mem", self.mem_gb)):
                if value is not None:
                    raise MerbenchError(f"{flag}: only used with --launcher slurm")
        if self.time_min < 1:
            raise MerbenchError(f"--time {self.time_min}: expected minutes per job, at least 1")

    def oversubscribed(self) -> bool:
        return self.launcher != "slurm" and (self.jobs or 1) * self.threads > (os.cpu_count() or 1)


@dataclass
class GridRun:
    """What a grid command ran: finished results and failures per run folder name."""

    grid_dir: Path
    cells: list[GridCell]
    results: dict[str, dict] = field(default_factory=dict)  # run -> result.json, finished cells
    errors: dict[str, str] = field(default_factory=dict)  # run -> one-line error, failed cells
    trained: list[str] = field(default_factory=list)  # runs trained (or tried) by this command
    wall_seconds: float = 0.0

    @property
    def reused(self) -> int:
        return sum(1 for c in self.cells if c.run in self.results and c.run not in self.trained)

    @property
    def failed(self) -> list[GridCell]:
        return [c for c in self.cells if c.run not in self.results]

    def result(self, cell: GridCell) -> dict | None:
        return self.results.get(cell.run)

    def runs(self) -> list[Run]:
        """The finished cells as ``Run`` objects, in cell order."""
        return [load_run(self.grid_dir / c.run) for c in self.cells if c.run in self.results]


def run_grid(grid_dir: Path, cells: list[GridCell], kind: str, command: list[str],
             options: RunnerOptions, console=None, extra: dict | None = None) -> GridRun:
    """Write the manifest, train every unfinished cell, read every cell's result back."""
    options.check()
    grid_dir = Path(grid_dir)
    with lock.hold(grid_dir):
        grid_dir.mkdir(parents=True, exist_ok=True)
        remove_temporaries(grid_dir)
        return _run_grid(grid_dir, unique(cells), kind, command, options, console, extra)


def _run_grid(grid_dir: Path, cells: list[GridCell], kind: str, command: list[str],
              options: RunnerOptions, console, extra: dict | None) -> GridRun:
    write_manifest(grid_dir, kind, command, cells, extra)
    outcomes: dict[str, dict] = {}
    todo = []
    for cell in cells:
        if run_folder.is_finished(grid_dir / cell.run):
            continue
        holder = lock.holder(grid_dir / cell.run)
        if holder is None:
            todo.append(cell)
        else:
            outcomes[cell.run] = {"error": f"being trained by another process ({holder.describe()}): "
                                           f"not trained here; run the command again when it is done"}
    run = GridRun(grid_dir, cells, trained=[c.run for c in todo])
    console = console or _stderr_console()
    if outcomes:
        console.print(f"{len(outcomes)} cell(s) held by another live process: left to it", soft_wrap=True)
    if todo and options.oversubscribed():
        console.print(f"warning: --jobs {options.jobs} x --threads {options.threads} exceeds the "
                      f"{os.cpu_count()} cores: the cells will slow each other down", soft_wrap=True)
    started = time.perf_counter()
    stopped: list[tuple[GridCell, str]] = []
    if todo:
        runner = _runner(options, grid_dir)  # a launcher that cannot start fails here, before any work
        total = len(cells) - len(outcomes)
        with GridProgress(total, total - len(todo), console, options.quiet) as progress:
            def finished(cell: GridCell, outcome: dict) -> bool:
                """Record a cell; True when the grid must stop (bad input, not a training failure)."""
                outcomes[cell.run] = outcome
                progress.finished(cell, outcome)
                if outcome.get("user_error") and not stopped:
                    stopped.append((cell, outcome["error"]))
                return bool(stopped)

            runner(todo, grid_dir, command, options, finished)
    run.wall_seconds = time.perf_counter() - started
    if stopped:
        # A user error (missing data root, a modality the dataset lacks) would fail every
        # cell alike: one line and exit 2, as for any bad input.
        cell, error = stopped[0]
        raise MerbenchError(f"{error} (in cell {cell.describe()}; the grid stopped, the cells not run "
                            f"stay pending: fix it and run the command again)")
    renamed = False
    for cell in todo:
        outcome = outcomes.get(cell.run)
        # The worker's folder name wins: merbench's source may have changed since planning.
        if outcome and outcome["run"] != cell.run:
            run.trained[run.trained.index(cell.run)] = outcome["run"]
            cell.run = outcome["run"]
            renamed = True
    if renamed:
        write_manifest(grid_dir, kind, command, cells, extra)
    for cell in cells:
        run_dir = grid_dir / cell.run
        if run_folder.is_finished(run_dir):
            run.results[cell.run] = read_result(run_dir)
        else:
            outcome = outcomes.get(cell.run)
            run.errors[cell.run] = (outcome or {}).get("error") or "not run"
    return run


Finished = Callable[[GridCell, dict], bool]  # True: stop, start no further cell


def _runner(options: RunnerOptions, grid_dir: Path):
    if options.launcher is not None:
        return functools.partial(run_submitit, make_executor(grid_dir, options))
    return run_processes if (options.jobs or 1) > 1 else run_serial


def run_serial(todo: list[GridCell], grid_dir: Path, command: list[str], options: RunnerOptions,
               finished: Finished) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        for cell in todo:
            if finished(cell, run_cell(cell.recipe, str(grid_dir), options.threads, command, cell.run)):
                break
    finally:
        torch.set_num_threads(before)


def run_processes(todo: list[GridCell], grid_dir: Path, command: list[str], options: RunnerOptions,
                  finished: Finished) -> None:
    # spawn, not fork: a forked child would inherit the parent's torch thread pools.
    context = multiprocessing.get_context("spawn")
    workers = min(options.jobs or 1, len(todo))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker,
                             initargs=(options.threads, os.getpid())) as pool:
        futures = {pool.submit(run_cell, c.recipe, str(grid_dir), options.threads, command, c.run): c for c in todo}
        try:
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                cell = futures[future]
                try:
                    outcome = future.result()
                except Exception as e:  # the worker process died (killed, out of memory)
                    outcome = _lost(grid_dir, cell, e)
                if finished(cell, outcome):
                    for other in futures:
                        other.cancel()  # cells not started yet; running ones finish
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def submitit_parameters(options: RunnerOptions, name: str) -> dict:
    """AutoExecutor.update_parameters arguments for one cell's job."""
    params = {"name": f"merbench-{name}", "timeout_min": options.time_min,
              "cpus_per_task": options.cpus_per_task or options.threads}
    if options.gpus_per_job:
        params["gpus_per_node"] = options.gpus_per_job
    if options.mem_gb:
        params["mem_gb"] = options.mem_gb
    if options.partition:
        params["slurm_partition"] = options.partition
    return params


def make_executor(grid_dir: Path, options: RunnerOptions):
    import submitit

    try:
        executor = submitit.AutoExecutor(folder=grid_dir / LOGS, cluster=options.launcher)
    except RuntimeError as e:  # e.g. no srun on this machine
        raise MerbenchError(f"--launcher {options.launcher}: {str(e).splitlines()[0]} "
                            f"(--launcher local runs the same jobs on this machine)") from None
    executor.update_parameters(**submitit_parameters(options, grid_dir.name))
    if options.launcher == "slurm":
        # start-up: submitit's Slurm classes only for a Slurm grid
        from merbench.grid.slurm import use_squeue_fallback

        use_squeue_fallback(executor)  # job states from squeue where sacct has no accounting database
    return executor


def run_submitit(executor, todo: list[GridCell], grid_dir: Path, command: list[str], options: RunnerOptions,
                 finished: Finished) -> None:
    if options.jobs:
        limit = options.jobs
    elif options.launcher == "slurm":
        limit = len(todo)  # the scheduler decides what runs when
    else:
        limit = max(1, (os.cpu_count() or 1) // options.threads)
    poll = POLL_S[options.launcher]
    pending, running = list(todo), {}
    grid_pid = os.getpid() if options.launcher == "local" else None  # a local job ends with this process
    try:
        while pending or running:
            while pending and len(running) < limit:
                cell = pending.pop(0)
                running[executor.submit(as_job, run_cell, cell.recipe, str(grid_dir), options.threads, command,
                                        cell.run, grid_pid)] = cell
            done = [job for job in running if job.done()]
            for job in done:
                cell = running.pop(job)
                try:
                    outcome = job.result()
                except Exception as e:  # the job itself failed: timeout, preemption, node failure
                    outcome = _lost(grid_dir, cell, e)
                if finished(cell, outcome):
                    pending.clear()  # submit nothing more; jobs in flight finish
            if not done:
                time.sleep(poll)
    except KeyboardInterrupt:
        # Jobs left behind would train the same folders as the next run of this command.
        for job in running:
            job.cancel(check=False)
        raise


TRACE_RULE = "-" * 22  # around the job's traceback in submitit's FailedJobError


def lost_job(error: BaseException) -> str:
    """One line for a job or worker that ended without a result. submitit's message for a job
    that ended without one (``scancel``, a time limit, a node failure) names the job on its
    first line and its last state on the second; the lines after are the job's log."""
    lines = [line.strip() for line in str(error).strip().splitlines()]
    if type(error).__name__ == "UncompletedJobError" and len(lines) >= 2:
        return f"{type(error).__name__}: {lines[0]} {lines[1]}"
    parts = str(error).split(TRACE_RULE)
    if type(error).__name__ == "FailedJobError" and len(parts) >= 3:
        # submitit's message for a job that raised: its first line, then the job's traceback
        # between two rules, whose last line is the exception that ended it
        trace = [line.strip() for line in parts[1].strip().splitlines() if line.strip()]
        if trace:
            return f"{type(error).__name__}: {trace[-1]}"
    return one_line(error)


def _lost(grid_dir: Path, cell: GridCell, error: BaseException) -> dict:
    line = lost_job(error)
    if isinstance(error, BrokenProcessPool):
        line = (f"{type(error).__name__}: a worker process ended abruptly (killed, out of memory, or, "
                f"from a Python script, the script ran again in the worker: call the grid under "
                f"`if __name__ == \"__main__\":`)")
    atomic_write_text(grid_dir / cell.run / ERROR, f"{line}\n\n(raised in the runner, not in training)\n")
    return {"run": cell.run, "ok": False, "error": line, "seconds": None}


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, markup=False)  # errors and paths as they are


class GridProgress:
    """Cells done of total, elapsed time and an estimate of the time left; a line per cell."""

    def __init__(self, total: int, reused: int, console, quiet: bool) -> None:
        self.total, self.reused, self.console, self.quiet = total, reused, console, quiet
        self.done = 0
        self.bar = None

    def __enter__(self) -> "GridProgress":
        if self.reused:
            self.console.print(f"{self.reused} of {self.total} cells already finished: reused", soft_wrap=True)
        if not self.quiet:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            # A long estimate period: the time left comes from every cell so far, not the last few.
            self.bar = Progress(TextColumn("grid"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("left"), TimeRemainingColumn(), console=self.console,
                                speed_estimate_period=7 * 24 * 3600.0)
            self.bar.start()
            self.task = self.bar.add_task("grid", total=self.total - self.reused)
        return self

    def finished(self, cell: GridCell, outcome: dict) -> None:
        self.done += 1
        took = f"{outcome['seconds']:.1f} s" if outcome.get("seconds") is not None else "-"
        where = f"{self.done}/{self.total - self.reused}"
        if outcome["ok"]:
            if not self.quiet:
                self.console.print(f"ok      {where}  {cell.describe()}  {took}  {outcome['run']}", soft_wrap=True)
        else:
            self.console.print(f"FAILED  {where}  {cell.describe()}  {outcome['run']}: {outcome['error']}",
                               soft_wrap=True)
        if self.bar is not None:
            self.bar.advance(self.task)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
