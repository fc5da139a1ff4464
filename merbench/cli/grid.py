"""merbench grid status DIR, and the options every grid command (ablate, heads-sweep, compare) shares."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional

import typer

from merbench.cli.common import command_line, console, err_console, finish, user_errors  # noqa: F401 (finish: the grid commands')
from merbench.device import DEFAULT_THREADS
from merbench.errors import MerbenchError
from merbench.experiments.sizing import estimate
from merbench.grid import RunnerOptions, grid_status
from merbench.grid.status import STATES
from merbench.recipe import override_pairs

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


# The shared options as (parameter, annotation, default), in the order each command's --help
# lists them, after the command's own options.
GRID_OPTIONS = (
    ("seeds", Seeds, 3), ("references", References, False), ("set_", Sets, None), ("out", Out, Path("grids")),
    ("jobs", Jobs, None), ("threads", Threads, DEFAULT_THREADS), ("launcher", Launcher, None),
    ("partition", Partition, None), ("gpus_per_job", GpusPerJob, 0), ("time", TimeMin, 60), ("mem", Mem, None),
    ("cpus_per_task", CpusPerTask, None), ("format", Format, "rich"), ("quiet", Quiet, False),
    ("dry_run", DryRun, False),
)


@dataclass
class GridOptions:
    """The shared options of one grid command line, checked: what ``merbench.api``'s grid
    functions take besides the experiment's own arguments."""

    seeds: int
    references: bool
    overrides: dict[str, Any]
    out: Path
    runner: Any  # merbench.grid.RunnerOptions
    format: str
    dry_run: bool

    def api(self, *, seeds: bool = True) -> dict[str, Any]:
        """Keyword arguments for ``merbench.api.compare`` / ``ablate`` / ``heads_sweep`` (``tune``
        with ``seeds=False``: a study has no seeds or references of its own)."""
        own = dict(seeds=self.seeds, references=self.references) if seeds else {}
        return dict(**own, out=self.out, runner=self.runner, dry_run=self.dry_run, command=command_line(),
                    console=grid_console(self.dry_run), **self.overrides)


def grid_options(values: dict[str, Any]) -> GridOptions:
    """The shared options from their parsed values, every one checked before any training."""
    check_format(values["format"])  # a typo in --format must not cost a grid
    runner = RunnerOptions(jobs=values["jobs"], launcher=values["launcher"], threads=values["threads"],
                           partition=values["partition"], gpus_per_job=values["gpus_per_job"],
                           time_min=values["time"], mem_gb=values["mem"], cpus_per_task=values["cpus_per_task"],
                           quiet=values["quiet"])
    runner.check()
    return GridOptions(values["seeds"], values["references"], override_pairs(list(values["set_"] or [])),
                       values["out"], runner, values["format"], values["dry_run"])


def grid_command(fn: Callable | None = None, *, without: tuple[str, ...] = ()) -> Callable:
    """A grid command: its own options, then the shared ones (:data:`GRID_OPTIONS` less
    ``without``, listed in its --help as if written out); ``fn`` is called with them parsed and
    checked as ``grid`` (an option left out takes its default)."""
    if fn is None:
        return functools.partial(grid_command, without=without)
    own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "grid"]
    options = [option for option in GRID_OPTIONS if option[0] not in without]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
              for name, annotation, default in options]

    @functools.wraps(fn)
    def command(*args, **kwargs):
        values = {name: kwargs.pop(name) if name in kwargs else default for name, _, default in GRID_OPTIONS}
        return fn(*args, grid=grid_options(values), **kwargs)

    command.__signature__ = inspect.Signature(own + shared, return_annotation=None)
    command.__annotations__ = {p.name: p.annotation for p in own + shared}
    return command


def check_format(fmt: str) -> None:
    """Before any training: a typo in --format must not cost a grid."""
    # start-up: tabulate only for this command, not for --help
    from merbench.tables import FORMATS

    if fmt not in FORMATS:
        raise MerbenchError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")


def grid_console(dry_run: bool):
    """Where the plan line goes: stdout when it is all the command prints (--dry-run), else stderr."""
    return console if dry_run else err_console


@grid_app.command("status")
@user_errors
def status(grid: Path = typer.Argument(..., help="A grid folder (holds grid.json).")) -> None:
    """Which cells are done, running, interrupted, failed (with the error) or pending."""
    from tabulate import tabulate

    if not (grid / "grid.json").exists() and (grid / "tune.json").exists():
        # start-up: a study's storage only for a tune folder
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
        # start-up: a study's storage only for a tune folder
        from merbench.tuning.tune import status_line

        line = status_line(grid)
        if line:
            typer.echo(line)
    if any(s.state != "done" for s in states):
        typer.echo(f"to finish: {estimate(manifest['cells'], grid).describe()}")


def register(app: typer.Typer) -> None:
    app.add_typer(grid_app, name="grid")
