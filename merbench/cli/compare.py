"""merbench compare --dataset D --models tfn,mfn,...|all [--seeds 3] [--references] [--efficiency]"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merbench.cli.common import command_line, user_errors
from merbench.cli.grid import (
    CpusPerTask, DryRun, Format, GpusPerJob, Jobs, Launcher, Mem, Out, Partition, Quiet, References, Seeds, Sets,
    Threads, TimeMin, check_format, finish, grid_console, runner_options,
)


@user_errors
def compare(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name: each model's recipe is recipes/<dataset>/<model>.yaml."),
    models: str = typer.Option(..., "--models", help="Comma-separated registered models, or all (every model with a recipe for the dataset)."),
    recipes: Optional[Path] = typer.Option(None, "--recipes", help="Folder of recipes laid out as <dataset>/<model>.yaml (default: ./recipes/<dataset>/<model>.yaml when present, else the packaged recipe)."),
    tuned: Optional[Path] = typer.Option(None, "--tuned", help="Folder of merbench tune folders: each model's recipe is its tune-<model>-<dataset>/best.yaml, and the table shows each row's tuning budget."),
    efficiency: bool = typer.Option(False, "--efficiency", help="Add parameters, training seconds per epoch and inference latency per utterance."),
    device: str = typer.Option("auto", "--device", help="With --efficiency: where latency is measured (auto = CUDA when present)."),
    seeds: Seeds = 3,
    references: References = False,
    set_: Sets = None,
    out: Out = Path("grids"),
    jobs: Jobs = None,
    threads: Threads = 1,
    launcher: Launcher = None,
    partition: Partition = None,
    gpus_per_job: GpusPerJob = 0,
    time: TimeMin = 60,
    mem: Mem = None,
    cpus_per_task: CpusPerTask = None,
    format: Format = "rich",
    quiet: Quiet = False,
    dry_run: DryRun = False,
) -> None:
    """Train (or reuse) every listed model on one dataset: the dataset's paper table (HFF Table 2 or 3 layout)."""
    from merbench import api
    from merbench.recipe import override_pairs

    check_format(format)
    options = runner_options(jobs, threads, launcher, partition, gpus_per_job, time, mem, cpus_per_task, quiet)
    report = api.compare(dataset, models, seeds=seeds, references=references, efficiency=efficiency, device=device,
                         recipes=recipes, tuned=tuned, out=out, runner=options, dry_run=dry_run, command=command_line(),
                         console=grid_console(dry_run), **override_pairs(list(set_ or [])))
    finish(report, format)

def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
