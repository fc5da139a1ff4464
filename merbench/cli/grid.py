"""merbench grid status DIR, and the options every grid command (ablate, heads-sweep, compare) shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from merbench.cli.common import console, err_console, user_errors

grid_app = typer.Typer(help="Inspect grid folders written by ablate, heads-sweep and compare.", no_args_is_help=True)

# Options shared by the grid commands (Annotated, so each command lists them in its own --help).
Seeds = Annotated[int, typer.Option("--seeds", help="Seeds per cell: the recipe's train.seed, then +1, +2, ...")]
Sets = Annotated[Optional[List[str]], typer.Option("--set", help="Override a recipe value in every cell: SECTION.KEY=VALUE (repeatable).")]
Out = Annotated[Path, typer.Option("--out", help="Parent folder of the grid folder (run folders + grid.json).")]
Jobs = Annotated[Optional[int], typer.Option("--jobs", help="Cells trained at once: local processes, or submitit jobs in flight (default 1; all on Slurm).")]
Threads = Annotated[int, typer.Option("--threads", help="Torch CPU threads per cell; fixed so every runner gives the same numbers.")]
Launcher = Annotated[Optional[str], typer.Option("--launcher", help="Train through submitit: slurm, local (subprocesses) or debug (in-process).")]
Partition = Annotated[Optional[str], typer.Option("--partition", help="Slurm partition.")]
GpusPerJob = Annotated[int, typer.Option("--gpus-per-job", min=0, help="GPUs per submitit job.")]
TimeMin = Annotated[int, typer.Option("--time", help="Minutes per submitit job before it is stopped.")]
Mem = Annotated[Optional[float], typer.Option("--mem", min=0, help="Slurm memory per job, GB.")]
CpusPerTask = Annotated[Optional[int], typer.Option("--cpus-per-task", min=1, help="CPUs per submitit job (default: --threads).")]
Format = Annotated[str, typer.Option("--format", help="rich, markdown, latex, csv or json.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar or per-cell lines (failures are still shown).")]
References = Annotated[bool, typer.Option("--references", help="Set the numbers papers reported (recipes/references/) beside ours.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan alone (cells, how many already finished, the time estimate) and train nothing.")]


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


def grid_console(dry_run: bool):
    """Where the plan line goes: stdout when it is all the command prints (--dry-run), else stderr."""
    return console if dry_run else err_console


def finish(report, fmt: str) -> None:
    """After ``merbench.api``'s grid function: a summary line, the tables, then every failed
    cell; exit 1 when any cell failed. A dry run printed its plan already."""
    if report.grid is None:
        typer.echo("dry run: nothing trained")
        return
    run = report.grid
    err_console.print(f"grid {run.grid_dir}: {len(run.cells)} cells, {len(run.trained)} trained, {run.reused} reused, "
                      f"{len(run.failed)} failed ({run.wall_seconds:.1f} s)", soft_wrap=True)
    for note in report.notes:
        err_console.print(note, soft_wrap=True)
    if report.figure is not None:
        err_console.print(f"figure: {report.figure}", soft_wrap=True)
    if report.tables:
        typer.echo(report.render(fmt))
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

    if not (grid / "grid.json").exists() and (grid / "tune.json").exists():
        from merbench.tuning.tune import status_line

        typer.echo(status_line(grid))  # a study still searching: no final runs yet
        return
    manifest, states = grid_status(grid)
    rows = [(s.state, s.cell.describe(), s.cell.run, s.detail) for s in states]
    typer.echo(tabulate(rows, ["state", "cell", "run folder", "detail"], disable_numparse=True))
    counts = ", ".join(f"{sum(s.state == name for s in states)} {name}" for name in STATES)
    typer.echo(f"{grid} ({manifest.get('kind')}, updated {manifest.get('updated_utc')}): {counts} "
               f"of {len(states)} cells")
    if manifest.get("kind") == "tune":
        from merbench.tuning.tune import status_line

        line = status_line(grid)
        if line:
            typer.echo(line)
    if any(s.state != "done" for s in states):
        from merbench.experiments.sizing import estimate

        typer.echo(f"to finish: {estimate(manifest['cells'], grid).describe()}")


def register(app: typer.Typer) -> None:
    app.add_typer(grid_app, name="grid")
