"""merbench grid status DIR, and the options every grid command (ablate, heads-sweep, compare) shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from merbench.cli.common import command_line, err_console, user_errors

grid_app = typer.Typer(help="Inspect grid folders written by ablate, heads-sweep and compare.", no_args_is_help=True)

# Options shared by the grid commands (Annotated, so each command lists them in its own --help).
Seeds = Annotated[int, typer.Option("--seeds", min=1, help="Seeds per cell: the recipe's train.seed, then +1, +2, ...")]
Sets = Annotated[Optional[List[str]], typer.Option("--set", help="Override a recipe value in every cell: SECTION.KEY=VALUE (repeatable).")]
Out = Annotated[Path, typer.Option("--out", help="Parent folder of the grid folder (run folders + grid.json).")]
Jobs = Annotated[Optional[int], typer.Option("--jobs", min=1, help="Cells trained at once: local processes, or submitit jobs in flight (default 1; all on Slurm).")]
Threads = Annotated[int, typer.Option("--threads", min=1, help="Torch CPU threads per cell; fixed so every runner gives the same numbers.")]
Launcher = Annotated[Optional[str], typer.Option("--launcher", help="Train through submitit: slurm, local (subprocesses) or debug (in-process).")]
Partition = Annotated[Optional[str], typer.Option("--partition", help="Slurm partition.")]
GpusPerJob = Annotated[int, typer.Option("--gpus-per-job", min=0, help="GPUs per submitit job.")]
TimeMin = Annotated[int, typer.Option("--time", min=1, help="Minutes per submitit job before it is stopped.")]
Mem = Annotated[Optional[float], typer.Option("--mem", min=0, help="Slurm memory per job, GB.")]
CpusPerTask = Annotated[Optional[int], typer.Option("--cpus-per-task", min=1, help="CPUs per submitit job (default: --threads).")]
Format = Annotated[str, typer.Option("--format", help="rich, markdown, latex or csv.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar or per-cell lines (failures are still shown).")]
References = Annotated[bool, typer.Option("--references", help="Set the numbers papers reported (recipes/references/) beside ours.")]


def runner_options(jobs, threads, launcher, partition, gpus_per_job, time, mem, cpus_per_task, quiet):
    from merbench.grid import RunnerOptions

    options = RunnerOptions(jobs=jobs, launcher=launcher, threads=threads, partition=partition,
                            gpus_per_job=gpus_per_job, time_min=time, mem_gb=mem,
                            cpus_per_task=cpus_per_task, quiet=quiet)
    options.check()
    return options


def check_format(fmt: str) -> None:
    """Before any training: a typo in --format must not cost a grid."""
    from merbench.errors import MerbenchError
    from merbench.tables import FORMATS

    if fmt not in FORMATS:
        raise MerbenchError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")


def cell_overrides(sets: list[str] | None, threads: int) -> list[str]:
    """The user's --set overrides plus the thread count: ``train.threads`` is part of every
    cell's recipe, so the run identity says how many threads made its numbers."""
    return list(sets or []) + [f"train.threads={threads}"]


def run_plan(plan, kind: str, out: Path, options):
    """Train the plan's unfinished cells in ``out/<plan.name>``; one summary line on stderr."""
    from merbench.grid import run_grid

    run = run_grid(out / plan.name, plan.cells, kind, command_line(), options, console=err_console,
                   extra={"info": plan.info})
    trained = len(run.trained)
    err_console.print(f"grid {run.grid_dir}: {len(run.cells)} cells, {trained} trained, {run.reused} reused, "
                      f"{len(run.failed)} failed ({run.wall_seconds:.1f} s)", soft_wrap=True)
    return run


def finish(run, text: str | None) -> None:
    """Print the tables, then every failed cell; exit 1 when any cell failed."""
    if text:
        typer.echo(text)
    if run.failed:
        for cell in run.failed:
            typer.echo(f"failed: {cell.describe()} ({cell.run}): {run.errors.get(cell.run)}", err=True)
        typer.echo(f"FAILED: {len(run.failed)} of {len(run.cells)} cells; merbench grid status {run.grid_dir}",
                   err=True)
        raise typer.Exit(1)


@grid_app.command("status")
@user_errors
def status(grid: Path = typer.Argument(..., help="A grid folder (holds grid.json).")) -> None:
    """Which cells are done, running, interrupted, failed (with the error) or pending."""
    from tabulate import tabulate

    from merbench.grid import grid_status
    from merbench.grid.status import STATES

    manifest, states = grid_status(grid)
    rows = [(s.state, s.cell.describe(), s.cell.run, s.detail) for s in states]
    typer.echo(tabulate(rows, ["state", "cell", "run folder", "detail"], disable_numparse=True))
    counts = ", ".join(f"{sum(s.state == name for s in states)} {name}" for name in STATES)
    typer.echo(f"{grid} ({manifest.get('kind')}, updated {manifest.get('updated_utc')}): {counts} "
               f"of {len(states)} cells")


def register(app: typer.Typer) -> None:
    app.add_typer(grid_app, name="grid")
